use super::*;

fn running(xs: &[f64]) -> Running {
    let mut r = Running::default();
    xs.iter().for_each(|x| r.push(*x));
    r
}

/// ln(ratio) with a small alternating wobble, `n` samples.
fn around(ratio: f64, wobble: f64, n: usize) -> Running {
    let xs: Vec<f64> = (0..n)
        .map(|i| ratio.ln() + if i % 2 == 0 { wobble } else { -wobble })
        .collect();
    running(&xs)
}

#[test]
fn welford_matches_the_two_pass_mean_and_variance() {
    let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    let r = running(&xs);
    assert_eq!(r.n(), 8);
    assert!((r.mean - 5.0).abs() < 1e-12);
    // Sample variance: 32 / 7.
    assert!((r.m2 / 7.0 - 32.0 / 7.0).abs() < 1e-12);
}

#[test]
fn p_value_at_the_tables_critical_t_is_alpha() {
    // Four degrees of freedom: t = 2.776445 is the two-sided 5% point (any t table).
    // Samples a±1 (twice) and a: mean a, sample sd 1, se 1/√5, so t = a·√5.
    let a = 2.776_445 / 5f64.sqrt();
    let t = paired(&running(&[a - 1.0, a + 1.0, a - 1.0, a + 1.0, a])).expect("n ≥ 2");
    assert!((t.p_value - 0.05).abs() < 1e-4, "{}", t.p_value);
    // The 95% interval then ends exactly at ratio 1.
    assert!((t.ci95.0 - 1.0).abs() < 1e-4, "{:?}", t.ci95);
    assert!((t.ratio - a.exp()).abs() < 1e-12);
}

#[test]
fn no_test_below_two_samples_and_identical_samples_are_certain() {
    assert_eq!(paired(&running(&[0.3])), None);
    let same = paired(&running(&[0.0, 0.0, 0.0])).expect("n ≥ 2");
    assert_eq!(same.p_value, 1.0);
    let shifted = paired(&running(&[0.2, 0.2, 0.2])).expect("n ≥ 2");
    assert_eq!(shifted.p_value, 0.0);
    assert!(shifted.differs(CPU_SAME));
}

#[test]
fn not_enough_traffic_names_the_thresholds() {
    let e = Evidence {
        requests: (999, 50_000),
        cpu: around(0.8, 0.01, 20),
        p99: around(1.0, 0.01, 20),
    };
    let why = verdict(&e).expect_err("io_uring is under MIN_REQUESTS");
    assert!(why.starts_with(NOT_ENOUGH), "{why}");
    assert!(
        why.contains("1000 requests (io_uring 999, epoll 50000)"),
        "{why}"
    );
    let few = Evidence {
        requests: (5000, 5000),
        cpu: around(0.8, 0.01, 4),
        p99: around(1.0, 0.01, 4),
    };
    let why = verdict(&few).expect_err("only 4 intervals");
    assert!(why.contains("(4 so far)"), "{why}");
    assert!(
        !why.contains("1000 requests"),
        "a condition already met is not repeated: {why}"
    );
}

#[test]
fn a_clear_cpu_difference_and_the_same_p99() {
    let e = Evidence {
        requests: (600_000, 600_000),
        cpu: around(0.82, 0.02, 10),
        p99: around(1.0, 0.05, 10),
    };
    assert_eq!(
        verdict(&e).expect("enough"),
        "io_uring used 18% less CPU per request than epoll and had the same p99 over 1.2M \
         requests (99.9% confidence, 10 paired 5-second intervals)"
    );
}

#[test]
fn noisy_differences_are_not_claimed() {
    // A 10% mean difference with ±40% noise over 6 intervals: not significant.
    let e = Evidence {
        requests: (20_000, 25_000),
        cpu: around(1.1, 0.4, 6),
        p99: around(0.7, 0.6, 6),
    };
    assert_eq!(
        verdict(&e).expect("enough"),
        "io_uring used the same CPU per request as epoll and had the same p99 over 45.0k \
         requests (no difference significant at 95% confidence, 6 paired 5-second intervals)"
    );
}

#[test]
fn a_higher_p99_is_said_with_the_weakest_claims_confidence() {
    let e = Evidence {
        requests: (3000, 3000),
        cpu: around(1.3, 0.001, 8),
        // ln(1.25) ± 0.2 over 8: t ≈ 2.94, p ≈ 0.02: claimed at 95%.
        p99: around(1.25, 0.2, 8),
    };
    let v = verdict(&e).expect("enough");
    assert_eq!(
        v,
        "io_uring used 30% more CPU per request than epoll and had a p99 25% higher over 6000 \
         requests (95% confidence, 8 paired 5-second intervals)"
    );
}

#[test]
fn counts_are_short() {
    assert_eq!(count(999), "999");
    assert_eq!(count(45_300), "45.3k");
    assert_eq!(count(1_234_567), "1.2M");
}
