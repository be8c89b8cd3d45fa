//! Rejection logs under a flood: every rejection at DEBUG, one INFO line per code per second.
//! (A binary of its own: the sampler and tracing's interest cache are process-wide.)

use tollgate_core::rejection::code;
use tollgate_core::{Rejection, RejectionResponder};
use tollgate_test_support::LogCapture;

#[test]
fn a_flood_of_rejections_writes_one_info_line_per_code_per_second() {
    let capture = LogCapture::new();
    capture.during(|| {
        for _ in 0..200 {
            RejectionResponder::json().respond(Rejection::from_code(code::SIGNATURE_INVALID));
        }
        RejectionResponder::json().respond(Rejection::from_code(code::ORIGIN_NOT_ALLOWED));
        for _ in 0..50 {
            RejectionResponder::json().respond(Rejection::from_code(code::STORE_UNAVAILABLE));
        }
    });
    let logs = capture.text();
    let count = |needle: &str| logs.lines().filter(|line| line.contains(needle)).count();
    assert_eq!(
        count("DEBUG tollgate: request rejected status=401 code=signature_invalid"),
        200,
        "{logs}"
    );
    // 200 rejections take far less than a second; two lines only if a second boundary fell
    // inside the loop.
    let info = count("INFO tollgate: request rejected status=401 code=signature_invalid");
    assert!((1..=2).contains(&info), "{info} INFO lines:\n{logs}");
    assert_eq!(count("suppressed=0"), 3, "{logs}");
    assert_eq!(
        count("INFO tollgate: request rejected status=403 code=origin_not_allowed"),
        1,
        "{logs}"
    );
    // A 5xx (an outage) is a WARN, sampled the same way; every one is still a DEBUG line.
    let warn = count("WARN tollgate: request rejected status=503 code=store_unavailable");
    assert!((1..=2).contains(&warn), "{warn} WARN lines:\n{logs}");
    assert_eq!(
        count("DEBUG tollgate: request rejected status=503 code=store_unavailable"),
        50,
        "{logs}"
    );
}
