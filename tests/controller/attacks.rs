//! Attacks, as a tenant with `kubectl` rights in one namespace would try them, through the
//! reconcilers (mocked Kubernetes API) and the emulator over HTTP. Each asserts that nothing
//! outside the attacker's own grants changed in Azure. (Two writers during a partition: the
//! leader test in `tests/cluster`, on real Leases.)

use super::*;

/// Team A's grant, Ready: (the harness, A's assignment id in Azure).
async fn victim_granted(h: &H) -> String {
    h.api.put(&assignment_yaml("victim", FACTORY_HUB, TELEMETRY_SP, "ServicePrincipal", READER));
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
    h.api.put(&assignment_yaml("attacker", FACTORY_HUB, SYNC_SP, "ServicePrincipal", READER));
    h.ra("attacker").await.expect("reconciles");
    let mut forged = h.ra_obj("attacker");
    let st = forged.status.as_mut().unwrap();
    st.owned_assignment_ids.push(victim_id.clone());
    st.assignment_id = Some(victim_id.clone());
    h.api.put(&forged);

    // A spec change (make before break would delete "old owned" grants), then the deletion.
    let mut changed = h.ra_obj("attacker");
    changed.spec.role.built_in = Some(iothub_access_operator::domain::BuiltInRole::IoTHubTwinContributor);
    h.api.put(&changed);
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
    h.api.put(&assignment_yaml("copy", FACTORY_HUB, TELEMETRY_SP, "ServicePrincipal", READER));
    h.ra("copy").await.expect("reconciles");
    assert_eq!(h.ready(&h.ra_obj("copy").status.unwrap().conditions).0, "True");
    h.api.delete::<IotHubRoleAssignment>(NS, "copy");
    h.ra("copy").await.expect("cleanup");
    assert!(!h.api.exists::<IotHubRoleAssignment>(NS, "copy"));
    assert_eq!(h.azure_assignments(TELEMETRY_SP).len(), 1, "the copy's deletion leaves the victim's grant");

    // The other way round: the original goes while a copy still wants the grant: handed over,
    // then removed with the last resource that wants it.
    h.api.put(&assignment_yaml("copy", FACTORY_HUB, TELEMETRY_SP, "ServicePrincipal", READER));
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
    h.api.put(&custom_role_yaml("role-a"));
    h.cr("role-a").await.expect("reconciles");
    let before = role_in_azure(&h, "Registry Reader role-a").expect("team A's role exists");

    // Another resource asks for the same role name with other permissions.
    let mut takeover = custom_role_yaml("role-x");
    takeover.spec.role_name = "Registry Reader role-a".into();
    takeover.spec.data_actions = vec!["Microsoft.Devices/IotHubs/*".into()];
    h.api.put(&takeover);
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
    h.api.put(&assignment_yaml("telemetry", FACTORY_HUB, TELEMETRY_SP, "ServicePrincipal", READER));
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
    h.api.put(&assignment_yaml(
        "helper",
        FACTORY_HUB,
        TELEMETRY_SP,
        "ServicePrincipal",
        &format!("{{definitionId: {evil}}}"),
    ));
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
    h.api.put(&assignment_yaml(
        "owner",
        FACTORY_HUB,
        TELEMETRY_SP,
        "ServicePrincipal",
        "{definitionId: 8E3AF657-A8FF-443C-A75C-2FE8C4BCB635}",
    ));
    h.ra("owner").await.expect("reconciles");
    let st = h.ra_obj("owner").status.unwrap();
    assert_eq!(h.ready(&st.conditions).1, "InvalidSpec");
    assert!(h.azure_assignments(TELEMETRY_SP).is_empty());
}
