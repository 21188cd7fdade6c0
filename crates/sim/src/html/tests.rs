use super::charts::{nice_step, time_label, time_step};
use super::*;

#[test]
fn escapes() {
    assert_eq!(
        esc("<a href=\"x\">&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn nice_numbers() {
    assert_eq!(nice_step(10.0, 4.0), 2.5);
    assert_eq!(nice_step(7.0, 4.0), 2.0);
    assert_eq!(time_step(2700.0), 300.0);
    assert_eq!(time_label(2700.0), "45m");
    assert_eq!(time_label(5400.0), "1:30h");
    assert_eq!(latency_colour(30.0), "#d64545");
}
