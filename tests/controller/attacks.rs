//! Attacks, as a tenant with `kubectl` rights in one namespace would try them, through the
//! reconcilers (mocked Kubernetes API) and the emulator over HTTP. Each asserts that nothing
//! outside the attacker's own grants changed in Azure. (Two writers during a partition: the
//! leader test in `tests/cluster`, on real Leases.)

use super::*;

/// Team A's grant, Ready: (the harness, A's assignment id in Azure).
async fn victim_granted(h: &H) -> String {
    h.api.put(&IotHubRoleAssignment::test("victim"));
    h.ra("victim").await.expect("reconciles");
    let st = h.ra_obj("victim").status.unwrap();
    assert_eq!(h.ready(&st.conditions).0, "True");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1);
    st.assignment_id.expect("the victim's assignment id")
}

#[tokio::test]
async fn attack_forged_status_ownership_deletes_nothing_that_is_not_the_attackers() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    let victim_id = victim_granted(&h).await;

    // The attacker's own resource, then its status claims the victim's grant.
    h.api.put(&IotHubRoleAssignment::test("attacker").for_principal(SYNC_SP, PrincipalType::ServicePrincipal));
    h.ra("attacker").await.expect("reconciles");
    let mut forged = h.ra_obj("attacker");
    let st = forged.status.as_mut().unwrap();
    st.owned_assignment_ids.push(victim_id.clone());
    st.assignment_id = Some(victim_id.clone());
    h.api.put(&forged);

    // A spec change (make before break would delete "old owned" grants), then the deletion.
    h.api.put(&h.ra_obj("attacker").built_in(BuiltInRole::IoTHubTwinContributor));
    h.ra("attacker").await.expect("reconciles");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "the victim's grant survives the spec change");
    h.api.delete::<IotHubRoleAssignment>(NS, "attacker");
    h.ra("attacker").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(NS, "attacker"));
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "the victim's grant survives the deletion");
    assert!(h.azure_assignments(SYNC_SP).is_empty(), "the attacker's own grants are gone");
}

#[tokio::test]
async fn attack_copy_and_delete_never_revokes_another_resources_grant() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    victim_granted(&h).await;

    // Same hub, principal and role as the victim's: adopted, never owned.
    h.api.put(&IotHubRoleAssignment::test("copy"));
    h.ra("copy").await.expect("reconciles");
    assert_eq!(h.ready(&h.ra_obj("copy").status.unwrap().conditions).0, "True");
    h.api.delete::<IotHubRoleAssignment>(NS, "copy");
    h.ra("copy").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(NS, "copy"));
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "the copy's deletion leaves the victim's grant");

    // The other way round: the original goes while a copy still wants the grant: handed over,
    // then removed with the last resource that wants it.
    h.api.put(&IotHubRoleAssignment::test("copy"));
    h.ra("copy").await.expect("reconciles");
    h.api.delete::<IotHubRoleAssignment>(NS, "victim");
    h.ra("victim").await.expect("cleanup");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "left for the copy, which still wants it");
    assert!(h.api.events().iter().any(|(r, _)| r == "HandedOver"), "{:?}", h.api.events());
    h.ra("copy").await.expect("reconciles");
    h.api.delete::<IotHubRoleAssignment>(NS, "copy");
    h.ra("copy").await.expect("cleanup");
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty(), "the last resource wanting it took it with it");
}

#[tokio::test]
async fn attack_a_custom_role_of_the_same_name_is_refused_and_never_touches_the_first() {
    let s = sub_allowed();
    let h = H::new(&allowed_refs(&s), None).await;
    h.api.put(&IotHubCustomRole::test("role-a"));
    h.cr("role-a").await.expect("reconciles");
    let before = role_in_azure(&h, "Registry Reader role-a").expect("team A's role exists");

    // Another resource asks for the same role name with other permissions.
    h.api.put(
        &IotHubCustomRole::test("role-x")
            .role_name("Registry Reader role-a")
            .data_actions(["Microsoft.Devices/IotHubs/*"]),
    );
    h.cr("role-x").await.expect("reconciles");
    let st = h.api.get::<IotHubCustomRole>(NS, "role-x").unwrap().status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("False".into(), "RoleNameTaken".into()));
    assert_eq!(role_in_azure(&h, "Registry Reader role-a"), Some(before.clone()), "not updated");

    h.api.delete::<IotHubCustomRole>(NS, "role-x");
    h.cr("role-x").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubCustomRole>(NS, "role-x"));
    assert_eq!(role_in_azure(&h, "Registry Reader role-a"), Some(before), "not deleted");
}

#[tokio::test]
async fn attack_no_write_leaves_the_namespace_scopes_whatever_was_planned() {
    // The last line of defence: the client a reconcile writes through checks the exact ids of
    // every write against the namespace's scopes, right before sending.
    let a = allowed();
    let h = H::new(&allowed_refs(&a), Some(&format!("{}/providers/Microsoft.Devices/IotHubs/{FLEET_HUB}", rg_scope())))
        .await;
    let azure = h.ctx.azure_for(NS);
    let outside = iothub_access_operator::azure::NewRoleAssignment {
        id: iothub_access_operator::domain::RoleAssignmentId {
            scope: iothub_access_operator::domain::Scope::parse(&hub_scope(FACTORY_HUB)).unwrap(),
            name: uuid::Uuid::from_u128(1),
        },
        role_definition_id: iothub_access_operator::domain::RoleDefinitionId::parse(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER_GUID}"
        ))
        .unwrap(),
        principal_id: TELEMETRY_SP.into(),
        principal_type: iothub_access_operator::crd::PrincipalType::ServicePrincipal,
        description: None,
    };
    let err = azure.create_role_assignment(&outside).await.expect_err("outside the namespace's scopes");
    assert!(err.to_string().contains("guardrail"), "{err}");
    let hub = iothub_access_operator::domain::HubId::new(SUB, RG, FACTORY_HUB);
    let change = iothub_access_operator::azure::HubAccessChange {
        shared_access: Some(iothub_access_operator::crd::Access::Deny),
        ..Default::default()
    };
    assert!(azure.set_hub_access(&hub, &change).await.is_err());
    assert_eq!(h.emu.stats().total(), 0, "nothing reached Azure");
    // Inside the namespace's scopes the same client writes.
    let mut inside = outside.clone();
    inside.id.scope = iothub_access_operator::domain::Scope::parse(&hub_scope(FLEET_HUB)).unwrap();
    azure.create_role_assignment(&inside).await.expect("inside: written");
}

#[tokio::test]
async fn attack_a_narrowed_namespace_gains_nothing_while_its_annotation_is_unknown() {
    // The admin narrowed the tenant's namespace to another resource group; the operator has just
    // started (or its namespace watch fails), so the annotation is not known yet. The tenant's
    // resource targets a hub the global list allows but the namespace does not.
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    *h.ns_annotation.lock().unwrap() = Err("the namespace cache has not seen it yet".into());
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    let err = h.ra("telemetry").await.expect_err("no verdict without the annotation");
    assert!(matches!(err, ReconcileError::ScopesUnknown(_)), "{err}");
    assert!(err.to_string().contains("not known yet"), "{err}");
    assert_eq!(h.emu.stats().writes(), 0, "nothing written while the guardrail cannot decide");

    // Once known, the narrowed list refuses it; still nothing in Azure.
    *h.ns_annotation.lock().unwrap() =
        Ok(Some("/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg-other".into()));
    h.ra("telemetry").await.expect("reconciles");
    assert_eq!(h.ready(&h.ra_obj("telemetry").status.unwrap().conditions).1, "ScopeNotAllowed");
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty());
    assert_eq!(h.emu.stats().writes(), 0);

    // A granted resource is not cleaned up (nor its finalizer dropped) while the annotation is
    // unknown: the deletion waits instead of deciding blind.
    *h.ns_annotation.lock().unwrap() = Ok(None);
    h.ra("telemetry").await.expect("reconciles");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1);
    *h.ns_annotation.lock().unwrap() = Err("the namespace watch is failing: 403".into());
    h.api.delete::<IotHubRoleAssignment>(NS, "telemetry");
    assert!(h.ra("telemetry").await.is_err());
    assert!(h.api.exists::<IotHubRoleAssignment>(NS, "telemetry"), "finalizer kept");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "nothing deleted blind");
}

#[tokio::test]
async fn attack_definition_id_cannot_grant_more_than_iot_hub_data_access() {
    // Someone made a custom role in Azure that can write hubs (and so add a shared access policy)
    // and assign roles; a tenant names it by GUID, bypassing the custom-role admission rules.
    let evil = "0e5c0c0a-1b2c-4d3e-8f4a-5b6c7d8e9f00";
    let seed = format!(
        "{DEMO_SEED}\nroleDefinitions:\n  - name: {evil}\n    roleName: Hub helper\n    assignableScopes: [/subscriptions/{SUB}]\n    permissions:\n      - actions: [Microsoft.Devices/IotHubs/write, Microsoft.Authorization/roleAssignments/write]\n        dataActions: [Microsoft.Devices/IotHubs/devices/read]\n"
    );
    let a = allowed();
    let h = H::with_seed(&seed, &allowed_refs(&a), None, |_| {}).await;
    h.api.put(&IotHubRoleAssignment::test("helper").definition_id(evil));
    h.ra("helper").await.expect("reconciles");
    let st = h.ra_obj("helper").status.unwrap();
    assert_eq!(h.ready(&st.conditions), ("False".into(), "RoleNotGrantable".into()));
    let message = &st.conditions.iter().find(|c| c.type_ == "Ready").unwrap().message;
    assert!(
        message.contains("Microsoft.Devices/IotHubs/write") && message.contains("Microsoft.Authorization"),
        "{message}"
    );
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty(), "nothing granted");
    assert_eq!(h.emu.stats().writes(), 0);
    assert!(h.api.events().iter().any(|(r, _)| r == "RoleNotGrantable"));

    // Owner by GUID (admission bypassed, e.g. an older CRD still installed): the operator's own
    // validation refuses it before any Azure call.
    h.api.put(&IotHubRoleAssignment::test("owner").definition_id("8E3AF657-A8FF-443C-A75C-2FE8C4BCB635"));
    h.ra("owner").await.expect("reconciles");
    let st = h.ra_obj("owner").status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "InvalidSpec");
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty());
}

// ---- Round 2: the edges (scope strings, wants, role reads, SAS ownership, fairness). ----

/// Another namespace, with its own annotation.
const OTHER_NS: &str = "team-b";

fn ready_of(h: &H, conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> (String, String) {
    h.ready(conds)
}

#[tokio::test]
async fn attack_scope_strings_that_climb_out_of_an_allowed_prefix_reach_nothing() {
    // Admission bypassed (an older CRD, a webhook down): the tenant's assignable scopes start with
    // the allowed subscription and climb out of it in every spelling an HTTP stack would resolve.
    let s = sub_allowed();
    let h = H::new(&allowed_refs(&s), None).await;
    let prefix = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/x");
    for (i, climb) in [
        format!("{prefix}/../../../../../../subscriptions/{PLATFORM_SUB}"),
        format!("{prefix}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/subscriptions/{PLATFORM_SUB}"),
        format!("{prefix}\\..\\..\\..\\..\\..\\..\\subscriptions\\{PLATFORM_SUB}"),
        format!("/subscriptions/{SUB}//resourceGroups/{RG}"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("climb-{i}");
        h.api.put(&IotHubCustomRole::test(&name).assignable_scopes([format!("/subscriptions/{SUB}"), climb.clone()]));
        h.cr(&name).await.expect("a refusal is a status");
        let st = h.api.get::<IotHubCustomRole>(NS, &name).unwrap().status.unwrap();
        assert_eq!(ready_of(&h, &st.conditions).1, "InvalidSpec", "{climb}");
        let message = &st.conditions.iter().find(|c| c.type_ == "Ready").unwrap().message;
        assert!(message.contains("spec.assignableScopes[1]"), "names the field: {message}");
    }
    // A management group id that is a dot segment.
    h.api.put(&IotHubRoleAssignment::test("mg").in_management_group(".."));
    h.ra("mg").await.expect("a refusal is a status");
    let st = h.ra_obj("mg").status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions).1, "InvalidSpec");
    assert_eq!(h.emu.stats().writes(), 0, "nothing written anywhere");
    assert!(h.emu.snapshot().role_definitions.iter().all(|d| !d.role_name.starts_with("Registry Reader climb")));

    // And the gate itself judges exactly the ids that go on the wire: a definition whose assignable
    // scope is not canonical is withheld, whatever the planner decided.
    let azure = h.ctx.azure_for(NS);
    let mut d = iothub_access_operator::domain::RoleDefinition {
        guid: uuid::Uuid::from_u128(7),
        role_name: "Sneaky".into(),
        description: String::new(),
        role_type: iothub_access_operator::domain::RoleType::CustomRole,
        permissions: vec![],
        assignable_scopes: vec![format!("/subscriptions/{SUB}/resourceGroups/{RG}/../../{PLATFORM_SUB}")],
    };
    d.permissions.push(iothub_access_operator::domain::Permission {
        data_actions: vec!["Microsoft.Devices/IotHubs/devices/read".into()],
        ..Default::default()
    });
    let err = azure
        .put_role_definition(&iothub_access_operator::domain::Scope::Subscription(SUB.into()), &d)
        .await
        .expect_err("withheld");
    assert!(err.to_string().contains("refused by the operator's guardrail before sending"), "{err}");
    assert_eq!(h.emu.stats().writes(), 0, "nothing reached Azure");
}

#[tokio::test]
async fn attack_asking_for_a_grant_from_where_one_may_not_never_pins_it() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    victim_granted(&h).await;
    // The intruder's namespace is narrowed to another resource group; it asks for the same grant
    // anyway, and so do two resources in the victim's namespace that may not ask: one observed,
    // one skipped.
    h.annotate(OTHER_NS, Ok(Some(&format!("/subscriptions/{SUB}/resourceGroups/rg-other"))));
    h.api.put(&IotHubRoleAssignment::test("pin").in_namespace(OTHER_NS));
    h.ra_in(OTHER_NS, "pin").await.expect("reconciles");
    let st = h.api.get::<IotHubRoleAssignment>(OTHER_NS, "pin").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions).1, "ScopeNotAllowed");
    h.api.put(&IotHubRoleAssignment::test("pin-observe").observed());
    h.api.put(&IotHubRoleAssignment::test("pin-skip").skipped());

    // The victim's team revokes its grant: it is gone, whoever else asked.
    h.api.delete::<IotHubRoleAssignment>(NS, "victim");
    h.ra("victim").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(NS, "victim"));
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty(), "revoked: nobody who may ask for it pinned it");
    assert!(!h.api.events().iter().any(|(r, _)| r == "HandedOver"), "{:?}", h.api.events());
}

#[tokio::test]
async fn attack_an_orphaned_grant_is_never_taken_over_and_deleted_by_another_namespace() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    // Team A grants, then leaves the grant in Azure on purpose.
    h.api.put(&IotHubRoleAssignment::test("victim").orphaned());
    h.ra("victim").await.expect("reconciles");
    h.api.delete::<IotHubRoleAssignment>(NS, "victim");
    h.ra("victim").await.expect("cleanup");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "orphaned: left in Azure");

    // Team B (allowed on the hub) asks for the same grant, then deletes its resource.
    h.api.put(&IotHubRoleAssignment::test("copy").in_namespace(OTHER_NS));
    h.ra_in(OTHER_NS, "copy").await.expect("reconciles");
    let st = h.api.get::<IotHubRoleAssignment>(OTHER_NS, "copy").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions).0, "True", "the grant exists: adopted");
    assert!(st.owned_assignment_ids.is_empty(), "adopted, never owned: {:?}", st.owned_assignment_ids);
    h.api.delete::<IotHubRoleAssignment>(OTHER_NS, "copy");
    h.ra_in(OTHER_NS, "copy").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(OTHER_NS, "copy"));
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "an orphan belongs to nobody: not deleted");
    assert!(!h.api.events().iter().any(|(r, _)| r == "TakenOver"), "{:?}", h.api.events());
}

#[tokio::test]
async fn attack_another_namespaces_custom_role_cannot_be_granted_by_its_guid() {
    let s = sub_allowed();
    let h = H::new(&allowed_refs(&s), None).await;
    h.api.put(&IotHubCustomRole::test("role-a"));
    h.cr("role-a").await.expect("reconciles");
    let guid = h.api.get::<IotHubCustomRole>(NS, "role-a").unwrap().status.unwrap().role_definition_id.unwrap();
    let guid = guid.rsplit('/').next().unwrap().to_string();

    // Team B names team A's role by its GUID (readable in Azure) to grant it and so pin it.
    h.api.put(
        &IotHubRoleAssignment::test("borrow")
            .for_principal(SYNC_SP, PrincipalType::ServicePrincipal)
            .definition_id(&guid)
            .in_namespace(OTHER_NS),
    );
    h.ra_in(OTHER_NS, "borrow").await.expect("a refusal is a status");
    let st = h.api.get::<IotHubRoleAssignment>(OTHER_NS, "borrow").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions), ("False".into(), "CustomRoleOfAnotherNamespace".into()));
    let message = &st.conditions.iter().find(|c| c.type_ == "Ready").unwrap().message;
    assert!(message.contains(NS) && message.contains("customRoleRef"), "says whose and what to do: {message}");
    assert!(h.azure_assignments(SYNC_SP).is_empty(), "nothing granted");

    // Team A can still delete its own role.
    h.api.delete::<IotHubCustomRole>(NS, "role-a");
    h.cr("role-a").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubCustomRole>(NS, "role-a"));
    assert_eq!(role_in_azure(&h, "Registry Reader role-a"), None, "deleted: nothing pins it");

    // A role team A left in Azure on purpose (Orphan): its resource is gone from every cache,
    // but Azure's copy of the definition still says whose it is.
    h.api.put(&IotHubCustomRole::test("role-k").orphaned());
    h.cr("role-k").await.expect("reconciles");
    let id = h.api.get::<IotHubCustomRole>(NS, "role-k").unwrap().status.unwrap().role_definition_id.unwrap();
    let guid = id.rsplit('/').next().unwrap().to_string();
    h.api.delete::<IotHubCustomRole>(NS, "role-k");
    h.cr("role-k").await.expect("cleanup");
    assert!(role_in_azure(&h, "Registry Reader role-k").is_some(), "orphaned: left in Azure");
    h.api.put(
        &IotHubRoleAssignment::test("borrow-k")
            .for_principal(SYNC_SP, PrincipalType::ServicePrincipal)
            .definition_id(&guid)
            .in_namespace(OTHER_NS),
    );
    h.ctx.observer.rotate();
    h.ra_in(OTHER_NS, "borrow-k").await.expect("a refusal is a status");
    let st = h.api.get::<IotHubRoleAssignment>(OTHER_NS, "borrow-k").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions), ("False".into(), "CustomRoleOfAnotherNamespace".into()));
    assert!(h.azure_assignments(SYNC_SP).is_empty(), "nothing granted");
}

#[tokio::test]
async fn attack_a_role_widened_in_azure_is_never_granted_and_a_grant_of_it_is_revoked() {
    let s = sub_allowed();
    let h = H::new(&allowed_refs(&s), None).await;
    h.api.put(&IotHubCustomRole::test("role-a"));
    h.cr("role-a").await.expect("reconciles");
    h.api.put(&IotHubRoleAssignment::test("granted").custom_role("role-a"));
    h.ra("granted").await.expect("reconciles");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1);

    // Someone with rights in Azure widens the role behind the operator's back.
    let id = h.api.get::<IotHubCustomRole>(NS, "role-a").unwrap().status.unwrap().role_definition_id.unwrap();
    let id = iothub_access_operator::domain::RoleDefinitionId::parse(&id).unwrap();
    let mut widened = h.ctx.azure.get_role_definition(&id).await.unwrap().expect("exists");
    widened.permissions[0].actions.push("Microsoft.Authorization/*/write".into());
    h.ctx.azure.put_role_definition(&id.scope, &widened).await.expect("widened in Azure");
    h.ctx.observer.rotate();

    // A new grant of it (the spec still names the harmless role) is refused on Azure's definition.
    h.api.put(
        &IotHubRoleAssignment::test("new")
            .for_principal(SYNC_SP, PrincipalType::ServicePrincipal)
            .custom_role("role-a"),
    );
    h.ra("new").await.expect("a refusal is a status");
    let st = h.ra_obj("new").status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions), ("False".into(), "RoleNotGrantable".into()));
    assert!(h.azure_assignments(SYNC_SP).is_empty(), "never granted");

    // The grant the operator made of it is revoked, visibly: a reason, an Event, a metric.
    h.ra("granted").await.expect("reconciles");
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty(), "the grant that now carries control-plane write is gone");
    let st = h.ra_obj("granted").status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions), ("False".into(), "RoleNotGrantable".into()));
    assert!(h.api.events().iter().any(|(r, _)| r == "GrantRevoked"), "{:?}", h.api.events());
    assert!(
        h.ctx.metrics.encode().contains("grants_revoked_total{reason=\"RoleNotGrantable\"} 1"),
        "{}",
        h.ctx.metrics.encode()
    );
}

#[tokio::test]
async fn attack_a_second_shared_access_resource_for_a_hub_is_refused_and_writes_nothing() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let denied = |h: &H| h.emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap().disable_local_auth;
    assert_eq!(denied(&h), Some(true));

    // Another namespace asks to allow SAS on the same hub.
    let writes = h.emu.stats().writes();
    h.api.put(&IotHubSharedAccess::test("fight").on_hub(FLEET_HUB).allow().in_namespace(OTHER_NS));
    h.sa_in(OTHER_NS, "fight").await.expect("a refusal is a status");
    let st = h.api.get::<IotHubSharedAccess>(OTHER_NS, "fight").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions), ("False".into(), "Conflict".into()));
    let message = &st.conditions.iter().find(|c| c.type_ == "Ready").unwrap().message;
    assert!(message.contains(&format!("{NS}/fleet")), "names the keeper: {message}");
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    assert_eq!(h.emu.stats().writes(), writes, "no flip-flop: nothing written by either");
    assert_eq!(denied(&h), Some(true));
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions).0, "True", "the first keeps the hub");

    // After the Deny, the last data-role holder goes: a locked-out hub is not Ready.
    h.api.delete::<IotHubRoleAssignment>(NS, "ops");
    h.ra("ops").await.expect("cleanup");
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    let st = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap().status.unwrap();
    assert_eq!(ready_of(&h, &st.conditions), ("False".into(), "WouldLockOut".into()));
    assert!(h.api.events().iter().any(|(r, _)| r == "WouldLockOut"), "{:?}", h.api.events());
    assert_eq!(denied(&h), Some(true), "SAS is never re-allowed by the operator");
}

#[tokio::test]
async fn attack_forged_status_hints_cost_no_more_than_the_schema_allows() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("attacker").for_principal(SYNC_SP, PrincipalType::ServicePrincipal));
    h.ra("attacker").await.expect("reconciles");
    h.ctx.observer.rotate();
    h.emu.reset_stats();
    h.ra("attacker").await.expect("reconciles");
    let honest = h.emu.stats().reads();

    // Hundreds of made-up hints, each of the right shape inside the namespace's scopes, each at
    // a scope of its own (one list each, if they were read).
    let mut forged = h.ra_obj("attacker");
    let st = forged.status.as_mut().unwrap();
    for i in 0..500 {
        st.owned_assignment_ids.push(format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            hub_scope(&format!("hub-{i:04}")),
            uuid::Uuid::from_u128(i)
        ));
    }
    h.api.put(&forged);
    h.ctx.observer.rotate();
    h.emu.reset_stats();
    h.ra("attacker").await.expect("reconciles");
    let reads = h.emu.stats().reads();
    assert!(reads <= honest + 16, "at most 16 hints are read: {reads} reads against {honest} without hints");
    let st = h.ra_obj("attacker").status.unwrap();
    assert!(st.owned_assignment_ids.len() <= 16, "nor written back: {}", st.owned_assignment_ids.len());
}

#[tokio::test]
async fn attack_a_stale_hand_over_never_lets_the_old_heir_take_an_orphan() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("victim").orphaned());
    h.ra("victim").await.expect("reconciles");
    // The attacker asks for the same grant, so that the victim hands it over on a spec change.
    let copy = || IotHubRoleAssignment::test("copy").in_namespace(OTHER_NS);
    h.api.put(&copy());
    h.ra_in(OTHER_NS, "copy").await.expect("reconciles");
    h.api.edit::<IotHubRoleAssignment>(NS, "victim", |v| v.spec.principal.id = Some(SYNC_SP.into()));
    h.ra("victim").await.expect("reconciles");
    assert!(h.api.events().iter().any(|(_, n)| n.starts_with("HandOverRoleAssignment")), "{:?}", h.api.events());
    // The attacker lets go; the victim wants the grant again, then leaves it in Azure on purpose.
    h.api.delete::<IotHubRoleAssignment>(OTHER_NS, "copy");
    h.ra_in(OTHER_NS, "copy").await.expect("cleanup");
    h.api.edit::<IotHubRoleAssignment>(NS, "victim", |v| v.spec.principal.id = Some(TELEMETRY_SP.into()));
    h.ctx.observer.rotate();
    h.ra("victim").await.expect("reconciles");
    h.api.delete::<IotHubRoleAssignment>(NS, "victim");
    h.ra("victim").await.expect("cleanup");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "orphaned: left in Azure");

    // The attacker comes back under the old heir's name and deletes its resource.
    h.api.put(&copy());
    h.ctx.observer.rotate();
    h.ra_in(OTHER_NS, "copy").await.expect("reconciles");
    h.api.delete::<IotHubRoleAssignment>(OTHER_NS, "copy");
    h.ra_in(OTHER_NS, "copy").await.expect("cleanup");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "the orphan belongs to nobody: not deleted");
    assert!(!h.api.events().iter().any(|(r, _)| r == "TakenOver"), "{:?}", h.api.events());
}

/// Attack: a principal reference not read yet (its ConfigMap just changed, or the operator just
/// started) must not count as wanting whatever grant of its role and scope: the maker's cleanup
/// would hand the grant over to it, and nobody would ever remove it. The cleanup waits instead.
#[tokio::test]
async fn attack_an_unread_principal_reference_never_pins_another_resources_grant() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("victim"));
    h.ra("victim").await.expect("reconciles");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1);
    // Same role and hub, its principal from a ConfigMap; not reconciled: the reference is unread.
    let mut pin = IotHubRoleAssignment::test("pin");
    pin.spec.principal = serde_json::from_value(serde_json::json!({
        "idFrom": {"configMapKeyRef": {"name": "x", "key": "id"}}, "type": "ServicePrincipal"
    }))
    .unwrap();
    h.api.put(&pin);
    h.api.delete::<IotHubRoleAssignment>(NS, "victim");
    assert!(h.ra("victim").await.is_err(), "the cleanup waits for the reference to be read");
    assert!(!h.api.events().iter().any(|(r, _)| r == "HandedOver"), "{:?}", h.api.events());
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1);
    // Once read (no such ConfigMap: it wants nothing), the grant goes with the resource that made it.
    let _ = h.ra("pin").await;
    h.ra("victim").await.expect("cleanup");
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 0, "not pinned by the reference");
}
