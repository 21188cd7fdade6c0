//! Live migration of VM hops: a virt-launcher pod that must move is migrated, never
//! evicted; one migration in flight per VMI; a failed one reported and retried after a
//! backoff.

use super::*;

/// The launcher pod of VMI `vmi`, owned by it, 10 minutes old.
fn launcher(name: &str, vmi: &str) -> PodFacts {
    let mut p = pod(
        name,
        -600,
        Owner::Controller("VirtualMachineInstance".into()),
    );
    p.controller = Some(format!("{vmi}-uid"));
    p.vmi = Some(vmi.into());
    p
}

/// A lane binding `up-lane-0` (offer: the chain `up`) over the fw VM's launcher pod and the
/// dpi pod, in Violation since 0; grace 60s, violationPolicy Evict, no network controller.
fn lane() -> World {
    World::new(ViolationPolicy::Evict)
        .pod(launcher("virt-launcher-fw-0-a24a7", "fw-0"))
        .pod(pod("dpi-0", -600, owned()))
        .binding(binding(
            "up-lane-0",
            "o",
            Some(0),
            &["virt-launcher-fw-0-a24a7", "dpi-0"],
        ))
}

fn migration(name: &str, vmi: &str, phase: MigrationPhase, ended: Option<i64>) -> MigrationFacts {
    MigrationFacts {
        key: PodKey::new("ar", name),
        vmi: vmi.into(),
        phase,
        created: Some(t(ended.unwrap_or(0) - 20)),
        ended: ended.map(t),
        reason: Some("no node can take the target pod".into()),
    }
}

fn migrate(node: &str, limits: usize, cost: f64) -> Action {
    let Predicted::Restores(prediction) = restoring(node, limits, cost) else {
        unreachable!()
    };
    Action::Migrate {
        binding: key("up-lane-0"),
        candidate: Box::new(Candidate {
            pod: PodKey::new("ar", "virt-launcher-fw-0-a24a7"),
            owned: true,
            prediction,
            controller: Some("fw-0-uid".into()),
            demand: Demand {
                requests: renderer_requests(),
                ..Demand::default()
            },
            created: Some(t(-600)),
            vmi: Some("fw-0".into()),
        }),
    }
}

#[test]
fn a_virt_launcher_pod_that_must_move_is_live_migrated_never_evicted() {
    // Moving the VM to n2 restores the lane with no rule in Limit; moving dpi would leave
    // one in Limit: the VM moves, by a migration to the planner's node.
    let w = lane()
        .restores("virt-launcher-fw-0-a24a7", "n2", 0, 1.0)
        .restores("dpi-0", "n3", 1, 0.5);
    let (actions, asked) = w.decide(60);
    assert_eq!(actions, vec![migrate("n2", 0, 1.0)]);
    assert_eq!(asked, ["virt-launcher-fw-0-a24a7", "dpi-0"]);
}

#[test]
fn when_a_container_hop_moves_best_the_vm_is_not_among_the_eviction_candidates() {
    let w = lane()
        .restores("virt-launcher-fw-0-a24a7", "n2", 1, 0.0)
        .restores("dpi-0", "n3", 0, 0.5);
    let (actions, _) = w.decide(60);
    assert_eq!(
        evicted(&actions),
        vec![("up-lane-0".to_string(), vec!["dpi-0".to_string()])]
    );
}

#[test]
fn one_migration_in_flight_per_vmi() {
    let mut w = lane()
        .restores("virt-launcher-fw-0-a24a7", "n2", 0, 1.0)
        .fails("dpi-0", "the planner would put its replacement back on n1");
    // This process created one the cache does not show yet: the binding waits.
    w.memory
        .migrating
        .insert(PodKey::new("ar", "fw-0"), ("fw-0-mig-1".into(), t(60)));
    assert_eq!(w.decide(70).0, vec![]);
    // The cache shows it running, or any other migration of the VMI in flight: waits.
    w.migrations = vec![migration(
        "fw-0-mig-1",
        "fw-0",
        MigrationPhase::InFlight,
        None,
    )];
    assert_eq!(w.decide(80).0, vec![]);
    w.memory.migrating.clear();
    assert_eq!(w.decide(80).0, vec![]);
    // Another VMI's migration does not hold this one back.
    w.migrations = vec![migration(
        "nat-0-mig",
        "nat-0",
        MigrationPhase::InFlight,
        None,
    )];
    assert_eq!(w.decide(80).0, vec![migrate("n2", 0, 1.0)]);
    // It succeeded, and the lane is still in Violation: migrated again.
    w.migrations = vec![migration(
        "fw-0-mig-1",
        "fw-0",
        MigrationPhase::Succeeded,
        Some(90),
    )];
    assert_eq!(w.decide(100).0, vec![migrate("n2", 0, 1.0)]);
}

#[test]
fn a_failed_migration_is_reported_once_and_retried_after_a_backoff() {
    let mut w = lane()
        .restores("virt-launcher-fw-0-a24a7", "n2", 0, 1.0)
        .fails("dpi-0", "the planner would put its replacement back on n1");
    w.memory
        .migrating
        .insert(PodKey::new("ar", "fw-0"), ("fw-0-mig-1".into(), t(60)));
    w.migrations = vec![migration(
        "fw-0-mig-1",
        "fw-0",
        MigrationPhase::Failed,
        Some(100),
    )];
    // The runtime reports the finished migration of its own once.
    assert_eq!(
        w.memory.finish_migrations(&w.migrations, t(105)),
        w.migrations
    );
    assert_eq!(w.memory.finish_migrations(&w.migrations, t(106)), vec![]);
    let actions = w.cycle(110);
    assert_eq!(
        actions,
        vec![Action::Skip {
            binding: key("up-lane-0"),
            reason: SkipReason::MigrationBackoff {
                vmis: vec![BackingOff {
                    vmi: PodKey::new("ar", "fw-0"),
                    migration: "fw-0-mig-1".into(),
                    reason: Some("no node can take the target pod".into()),
                    failures: 1,
                    retry_at: t(130),
                }],
            },
        }]
    );
    assert_eq!(
        skips(&actions)[0].1,
        "migration-backoff",
        "the metric's label"
    );
    assert_eq!(
        actions[0].to_string_note(),
        "not moving: VMI ar/fw-0: migration fw-0-mig-1 failed: no node can take the target pod (1 in a row); not migrated again before 2025-06-01T00:02:10Z"
    );
    // Reported once for this failure.
    assert_eq!(w.cycle(120), vec![]);
    // The backoff has passed: migrated again.
    assert_eq!(w.cycle(130), vec![migrate("n2", 0, 1.0)]);
    // A second failure: reported again (another migration), and twice the wait.
    w.migrations.push(migration(
        "fw-0-mig-2",
        "fw-0",
        MigrationPhase::Failed,
        Some(150),
    ));
    let actions = w.cycle(160);
    let Some(Action::Skip {
        reason: SkipReason::MigrationBackoff { vmis },
        ..
    }) = actions.first()
    else {
        panic!("{actions:?}")
    };
    assert_eq!(
        (
            vmis[0].migration.as_str(),
            vmis[0].failures,
            vmis[0].retry_at
        ),
        ("fw-0-mig-2", 2, t(210))
    );
    assert_eq!(w.cycle(209), vec![]);
    assert_eq!(w.cycle(210), vec![migrate("n2", 0, 1.0)]);
    // A success ends the run of failures.
    w.migrations.push(migration(
        "fw-0-mig-3",
        "fw-0",
        MigrationPhase::Succeeded,
        Some(220),
    ));
    assert_eq!(w.cycle(221), vec![migrate("n2", 0, 1.0)]);
}

#[test]
fn a_vm_backing_off_leaves_the_container_hops_to_move() {
    let mut w = lane()
        .restores("virt-launcher-fw-0-a24a7", "n2", 0, 1.0)
        .restores("dpi-0", "n3", 1, 0.5);
    w.migrations = vec![migration(
        "fw-0-mig-1",
        "fw-0",
        MigrationPhase::Failed,
        Some(50),
    )];
    let (actions, asked) = w.decide(60);
    assert_eq!(
        evicted(&actions),
        vec![("up-lane-0".to_string(), vec!["dpi-0".to_string()])]
    );
    assert_eq!(asked, ["dpi-0"], "the VM backing off is not asked about");
}

#[test]
fn dry_run_says_it_would_migrate() {
    let mut w = lane()
        .restores("virt-launcher-fw-0-a24a7", "n2", 0, 1.0)
        .fails("dpi-0", "no");
    w.dry_run = true;
    let actions = w.cycle(60);
    assert_eq!(
        actions
            .first()
            .map(Action::to_string_note)
            .unwrap_or_default(),
        "dry run: would live-migrate VMI ar/fw-0 (pod ar/virt-launcher-fw-0-a24a7) to n2: latency 1ms (Compliant)"
    );
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    let secs: Vec<u64> = (1..=6).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(secs, [30, 60, 120, 240, 300, 300]);
    assert_eq!(
        MigrationPhase::from_phase(Some("Scheduling")),
        MigrationPhase::InFlight
    );
    assert_eq!(MigrationPhase::from_phase(None), MigrationPhase::InFlight);
    assert_eq!(
        MigrationPhase::from_phase(Some("Failed")),
        MigrationPhase::Failed
    );
}

trait Note {
    fn to_string_note(&self) -> String;
}

impl Note for Action {
    /// The Event's note of a skip.
    fn to_string_note(&self) -> String {
        match self {
            Action::Skip { reason, .. } => reason.to_string(),
            other => format!("{other:?}"),
        }
    }
}
