//! Attacks, as a tenant with `kubectl` rights in one namespace would try them, through the
//! reconcilers (mocked Kubernetes API) and the emulator over HTTP. Each asserts that nothing
//! outside the attacker's own grants changed in Azure.

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
