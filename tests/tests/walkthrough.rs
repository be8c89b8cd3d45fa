//! The demo's walkthrough as assertions: the same scenario list the `tollgate-demo` binary
//! prints, each outcome checked against its expectation.

use std::collections::HashSet;

use tollgate_demo::{Demo, render, run_all, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demo_scenario_has_its_expected_outcome() {
    let demo = Demo::start().await.expect("start the demo apps");
    let outcomes = run_all(&demo, &scenarios()).await;
    let mismatched: Vec<_> = outcomes.iter().filter(|o| !o.passed()).collect();
    assert!(
        mismatched.is_empty(),
        "mismatched scenarios: {mismatched:#?}\n{}",
        render(&outcomes)
    );
}

#[test]
fn scenario_list_is_complete_and_unambiguous() {
    let list = scenarios();
    let names: HashSet<_> = list.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), list.len(), "scenario names must be unique");
    assert!(list.iter().all(|s| !s.expected.is_empty()));
}
