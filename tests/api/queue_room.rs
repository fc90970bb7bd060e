//! The waiting room's storage contract, one suite for both backends: the in-process room by
//! default, `RedisRoom` under a key prefix of its own when `BOXOFFICE_TEST_REDIS_URL` is set.
//! Time is a plain `now_ms` the tests move; chance is a seeded generator.

use std::{collections::HashMap, sync::Arc};

use boxoffice::{
    config::ServiceUrl,
    infra::redis::RedisHandle,
    queue::{
        MemoryRoom, RedisRoom, WaitingRoom,
        room::{Lane, OPEN_SCORE_BASE, RoomError, RoomRules, Standing, Tick},
    },
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

use crate::helpers::redis_url;

/// Sale opening in every test: an ordinary instant in 2023.
const OPENS: i64 = 1_700_000_000_000;
const SECOND: i64 = 1_000;

/// One test's room and event, cleaned out of Redis when the test ends.
struct Fixture {
    room: Arc<dyn WaitingRoom>,
    event: String,
    redis: Option<(redis::Client, String)>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let Some((client, prefix)) = &self.redis else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

async fn fixture() -> Fixture {
    let event = uuid::Uuid::now_v7().to_string();
    match redis_url() {
        Some(url) => {
            let prefix = format!("bo_test:{}:", uuid::Uuid::now_v7().simple());
            let url = ServiceUrl::parse(&url).expect("redis url");
            let handle = RedisHandle::connect(&url, &prefix)
                .await
                .expect("redis connects");
            Fixture {
                room: Arc::new(RedisRoom::new(handle.clone())),
                event,
                redis: Some((handle.client, prefix)),
            }
        }
        None => Fixture {
            room: Arc::new(MemoryRoom::new()),
            event,
            redis: None,
        },
    }
}

fn rules() -> RoomRules {
    RoomRules {
        capacity: 1_000,
        admit_per_second: 10,
        admission_ttl_ms: 600 * SECOND,
        sale_opens_at_ms: OPENS,
        vip_share: 0.0,
        heartbeat_timeout_ms: 3_600 * SECOND,
        max_joins_per_ip: None,
        paused: false,
    }
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i:05}")).collect()
}

impl Fixture {
    async fn join(&self, user: &str, rules: &RoomRules, now: i64) -> Standing {
        self.join_in(user, Lane::Normal, rules, now).await
    }

    async fn join_in(&self, user: &str, lane: Lane, rules: &RoomRules, now: i64) -> Standing {
        self.room
            .join(&self.event, user, lane, "192.0.2.1", rules, now, draw(user))
            .await
            .expect("join")
            .standing
    }

    async fn status(&self, user: &str, rules: &RoomRules, now: i64) -> Option<Standing> {
        self.room
            .status(&self.event, user, rules, now)
            .await
            .expect("status")
    }

    async fn position(&self, user: &str, rules: &RoomRules, now: i64) -> Option<u64> {
        match self.status(user, rules, now).await {
            Some(Standing::Waiting { position, .. }) => position,
            _ => None,
        }
    }

    async fn tick(&self, rules: &RoomRules, now: i64) -> Tick {
        self.room.tick(&self.event, rules, now).await.expect("tick")
    }

    async fn admitted(&self, rules: &RoomRules, now: i64) -> Vec<String> {
        self.tick(rules, now)
            .await
            .admitted
            .into_iter()
            .map(|(user, _, _)| user)
            .collect()
    }
}

/// A fixed 52-bit draw per user, for tests that do not study the draw itself.
fn draw(user: &str) -> u64 {
    user.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) & (OPEN_SCORE_BASE - 1)
}

#[tokio::test]
async fn joining_twice_returns_the_same_place() {
    let f = fixture().await;
    let r = rules();
    let first = f
        .room
        .join(&f.event, "ann", Lane::Normal, "192.0.2.1", &r, OPENS + 1, 7)
        .await
        .expect("join");
    f.join("bob", &r, OPENS + 2).await;
    let again = f
        .room
        .join(
            &f.event,
            "ann",
            Lane::Normal,
            "192.0.2.1",
            &r,
            OPENS + 3,
            99,
        )
        .await
        .expect("join again");
    assert!(first.new);
    assert!(!again.new);
    assert_eq!(again.standing, first.standing);
    assert_eq!(
        again.standing,
        Standing::Waiting {
            lane: Lane::Normal,
            position: Some(1),
            score: OPEN_SCORE_BASE + 1
        }
    );
}

#[tokio::test]
async fn a_user_has_one_entry_whichever_lane_they_ask_for() {
    let f = fixture().await;
    let r = rules();
    f.join_in("ann", Lane::Normal, &r, OPENS).await;
    let again = f.join_in("ann", Lane::Vip, &r, OPENS + 1).await;
    assert!(matches!(
        again,
        Standing::Waiting {
            lane: Lane::Normal,
            ..
        }
    ));
    let stats = f.room.stats(&f.event, OPENS + 1).await.expect("stats");
    assert_eq!(stats.waiting, vec![(Lane::Vip, 0), (Lane::Normal, 1)]);

    // Admitted, joining again returns the slot, not a second place in line.
    f.tick(&r, OPENS + SECOND).await;
    let after = f.join("ann", &r, OPENS + 2 * SECOND).await;
    assert!(matches!(
        after,
        Standing::Admitted {
            lane: Lane::Normal,
            ..
        }
    ));
    let stats = f
        .room
        .stats(&f.event, OPENS + 2 * SECOND)
        .await
        .expect("stats");
    assert_eq!(stats.waiting, vec![(Lane::Vip, 0), (Lane::Normal, 0)]);
    assert_eq!(stats.active, 1);
}

#[tokio::test]
async fn the_pre_queue_hides_positions_until_the_sale_opens() {
    let f = fixture().await;
    let r = rules();
    let before = f.join("ann", &r, OPENS - 60 * SECOND).await;
    assert!(matches!(before, Standing::Waiting { position: None, .. }));
    assert!(matches!(
        f.status("ann", &r, OPENS - 1).await,
        Some(Standing::Waiting { position: None, .. })
    ));
    assert_eq!(f.position("ann", &r, OPENS).await, Some(1));
}

#[tokio::test]
async fn pre_queue_order_is_uniformly_random_whatever_the_join_order() {
    let f = fixture().await;
    const N: usize = 1_000;
    let r = RoomRules {
        capacity: N as u32,
        admit_per_second: N as u32,
        ..rules()
    };
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let people = users(N);
    // Everyone presses the button in order, one millisecond apart, well before opening.
    for (i, user) in people.iter().enumerate() {
        f.room
            .join(
                &f.event,
                user,
                Lane::Normal,
                "192.0.2.1",
                &r,
                OPENS - 10 * 60 * SECOND + i as i64,
                rng.r#gen(),
            )
            .await
            .expect("join");
    }
    // One tick after opening lets everyone in, in line order.
    let admitted = f.admitted(&r, OPENS + SECOND).await;
    assert_eq!(admitted.len(), N);
    let rank_of: HashMap<&str, usize> = admitted
        .iter()
        .enumerate()
        .map(|(rank, user)| (user.as_str(), rank))
        .collect();
    let ranks: Vec<usize> = people.iter().map(|u| rank_of[u.as_str()]).collect();

    // Join order does not predict rank: Spearman's rho near 0 (sd ~ 0.032 for N = 1000).
    let n = N as f64;
    let d2: f64 = ranks
        .iter()
        .enumerate()
        .map(|(i, &rank)| (i as f64 - rank as f64).powi(2))
        .sum();
    let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    assert!(rho.abs() < 0.1, "join order predicts rank: rho = {rho}");

    // Every tenth of the joiners spreads evenly over the tenths of the line:
    // chi-square over the 10 x 10 table, 81 degrees of freedom, p = 0.001 at 124.8.
    let mut table = [[0u32; 10]; 10];
    for (i, &rank) in ranks.iter().enumerate() {
        table[i * 10 / N][rank * 10 / N] += 1;
    }
    let expected = n / 100.0;
    let chi2: f64 = table
        .iter()
        .flatten()
        .map(|&seen| (f64::from(seen) - expected).powi(2) / expected)
        .sum();
    assert!(
        chi2 < 124.8,
        "ranks are not uniform by join order: chi2 = {chi2}"
    );

    // And the earliest tenth is not ahead on average (mean rank 499.5, sd ~ 29).
    let early_mean = ranks[..N / 10].iter().sum::<usize>() as f64 / (n / 10.0);
    assert!(
        (early_mean - 499.5).abs() < 100.0,
        "early joiners stand at {early_mean} on average"
    );
}

#[tokio::test]
async fn after_opening_the_line_is_first_come_first_served() {
    let f = fixture().await;
    let r = RoomRules {
        admit_per_second: 100,
        ..rules()
    };
    let people = users(20);
    // Draws that would reverse the order if they were used after opening.
    for (i, user) in people.iter().enumerate() {
        let joined = f
            .room
            .join(
                &f.event,
                user,
                Lane::Normal,
                "192.0.2.1",
                &r,
                OPENS + i as i64,
                1_000 - i as u64,
            )
            .await
            .expect("join");
        assert!(matches!(
            joined.standing,
            Standing::Waiting { position: Some(p), .. } if p == i as u64 + 1
        ));
    }
    for (i, user) in people.iter().enumerate() {
        assert_eq!(f.position(user, &r, OPENS + 100).await, Some(i as u64 + 1));
    }
    assert_eq!(f.admitted(&r, OPENS + 200).await, people);
}

#[tokio::test]
async fn pre_queue_members_stand_ahead_of_everyone_who_joins_after_opening() {
    let f = fixture().await;
    let r = rules();
    let people = users(10);
    let (early, late) = people.split_at(5);
    for user in early {
        f.join(user, &r, OPENS - SECOND).await;
    }
    for user in late {
        f.join(user, &r, OPENS + SECOND).await;
    }
    let mut early_positions = Vec::new();
    for user in early {
        early_positions.push(f.position(user, &r, OPENS + SECOND).await.expect("waiting"));
    }
    early_positions.sort_unstable();
    assert_eq!(early_positions, vec![1, 2, 3, 4, 5]);
    for (i, user) in late.iter().enumerate() {
        assert_eq!(
            f.position(user, &r, OPENS + SECOND).await,
            Some(6 + i as u64)
        );
    }
}

#[tokio::test]
async fn a_waiting_users_position_never_increases_through_joins_leaves_drops_and_admissions() {
    let f = fixture().await;
    let r = RoomRules {
        capacity: 30,
        admit_per_second: 3,
        admission_ttl_ms: 5 * SECOND,
        heartbeat_timeout_ms: 10 * SECOND,
        vip_share: 0.5,
        ..rules()
    };
    let mut rng = StdRng::seed_from_u64(7);
    let people = users(200);
    let mut now = OPENS - SECOND;
    for user in &people[..60] {
        let lane = if rng.gen_bool(0.2) {
            Lane::Vip
        } else {
            Lane::Normal
        };
        f.room
            .join(&f.event, user, lane, "192.0.2.1", &r, now, rng.r#gen())
            .await
            .expect("join");
    }
    now = OPENS;
    let mut next_joiner = 60;
    let mut last_seen: HashMap<String, u64> = HashMap::new();
    for _ in 0..60 {
        now += 250;
        match rng.gen_range(0..4) {
            0 if next_joiner < people.len() => {
                let lane = if rng.gen_bool(0.2) {
                    Lane::Vip
                } else {
                    Lane::Normal
                };
                f.join_in(&people[next_joiner], lane, &r, now).await;
                next_joiner += 1;
            }
            1 => {
                let user = people[..next_joiner].choose(&mut rng).expect("someone");
                f.room.leave(&f.event, user).await.expect("leave");
                last_seen.remove(user);
            }
            _ => {
                f.tick(&r, now).await;
            }
        }
        // Only about half keep polling; the others go silent and are dropped in time.
        for user in people[..next_joiner].iter().step_by(2) {
            match f.position(user, &r, now).await {
                Some(position) => {
                    if let Some(&before) = last_seen.get(user) {
                        assert!(
                            position <= before,
                            "{user} moved back from {before} to {position}"
                        );
                    }
                    last_seen.insert(user.clone(), position);
                }
                None => {
                    last_seen.remove(user);
                }
            }
        }
    }
    let stats = f.room.stats(&f.event, now).await.expect("stats");
    assert!(stats.admitted_total > 0 && stats.abandoned_total > 0 && stats.left_total > 0);
}

#[tokio::test]
async fn admission_never_exceeds_the_capacity_nor_the_rate() {
    let f = fixture().await;
    let r = RoomRules {
        capacity: 25,
        admit_per_second: 10,
        admission_ttl_ms: 4 * SECOND,
        ..rules()
    };
    for user in users(300) {
        f.join(&user, &r, OPENS - SECOND).await;
    }
    let mut admitted_at: Vec<i64> = Vec::new();
    let mut slots: Vec<i64> = Vec::new();
    // Irregular tick spacing, as a real ticker under load has.
    let mut now = OPENS;
    let mut rng = StdRng::seed_from_u64(11);
    while now < OPENS + 20 * SECOND {
        now += rng.gen_range(30..400);
        let tick = f.tick(&r, now).await;
        slots.retain(|&expiry| expiry > now);
        for (_, _, expiry) in &tick.admitted {
            admitted_at.push(now);
            slots.push(*expiry);
        }
        assert!(tick.active <= 25, "{} active", tick.active);
        assert_eq!(tick.active, slots.len() as u64);
    }
    // Over any window, no more than the rate times its length plus one second's worth.
    for (i, &start) in admitted_at.iter().enumerate() {
        for (j, &end) in admitted_at.iter().enumerate().skip(i) {
            let allowed = 10.0 * (end - start) as f64 / 1000.0 + 10.0;
            assert!(
                ((j - i + 1) as f64) <= allowed + 1e-9,
                "burst from {start} to {end}"
            );
        }
    }
    // And the room is used: slots of 4 s at capacity 25 allow ~6 per second over 20 s.
    assert!(
        admitted_at.len() >= 90,
        "only {} admitted",
        admitted_at.len()
    );
}

#[tokio::test]
async fn the_vip_lane_gets_its_share_and_unused_share_flows_to_the_other_lane() {
    let f = fixture().await;
    let r = RoomRules {
        vip_share: 0.3,
        ..rules()
    };
    for user in users(15) {
        f.join_in(&format!("vip-{user}"), Lane::Vip, &r, OPENS - SECOND)
            .await;
    }
    for user in users(40) {
        f.join_in(&user, Lane::Normal, &r, OPENS - SECOND).await;
    }
    let lanes = |tick: &Tick| {
        let vip = tick
            .admitted
            .iter()
            .filter(|(_, lane, _)| *lane == Lane::Vip)
            .count();
        (vip, tick.admitted.len() - vip)
    };
    for second in 1..=5 {
        let tick = f.tick(&r, OPENS + second * SECOND).await;
        assert_eq!(lanes(&tick), (3, 7), "second {second}");
    }
    // 15 VIPs and 35 others are in; the VIP lane is empty, so the normal lane gets it all.
    let tick = f.tick(&r, OPENS + 6 * SECOND).await;
    assert_eq!(lanes(&tick), (0, 5));
    assert_eq!(
        tick.heads,
        vec![(Lane::Vip, None, 0), (Lane::Normal, None, 0)]
    );

    // With few normal waiters left, the VIP lane takes their unused share.
    for user in users(12) {
        f.join_in(
            &format!("late-vip-{user}"),
            Lane::Vip,
            &r,
            OPENS + 6 * SECOND,
        )
        .await;
    }
    f.join_in("late-normal", Lane::Normal, &r, OPENS + 6 * SECOND)
        .await;
    let tick = f.tick(&r, OPENS + 7 * SECOND).await;
    assert_eq!(lanes(&tick), (9, 1));
}

#[tokio::test]
async fn silent_waiters_are_dropped_after_the_timeout_and_polls_keep_others_in_line() {
    let f = fixture().await;
    let r = RoomRules {
        heartbeat_timeout_ms: 30 * SECOND,
        ..rules()
    };
    let t = OPENS + SECOND;
    for user in ["silent", "poller", "socket", "early-poller"] {
        f.join(user, &r, t).await;
    }
    // A poll younger than a third of the timeout writes nothing: that heartbeat stays at t.
    f.status("early-poller", &r, t + 5 * SECOND).await;
    f.status("poller", &r, t + 20 * SECOND).await;
    f.room
        .heartbeat(&f.event, &["socket".to_owned()], t + 25 * SECOND)
        .await
        .expect("heartbeat");
    let pr = RoomRules {
        paused: true,
        ..r.clone()
    };

    let tick = f.tick(&pr, t + 30 * SECOND - 1).await;
    assert!(tick.abandoned.is_empty());
    let mut tick = f.tick(&pr, t + 30 * SECOND).await;
    tick.abandoned.sort();
    assert_eq!(tick.abandoned, vec!["early-poller", "silent"]);
    assert_eq!(f.status("silent", &r, t + 31 * SECOND).await, None);
    assert_eq!(f.position("poller", &r, t + 31 * SECOND).await, Some(1));
    assert_eq!(f.position("socket", &r, t + 31 * SECOND).await, Some(2));

    let tick = f.tick(&pr, t + 55 * SECOND + 1).await;
    assert_eq!(tick.abandoned, vec!["socket"]);
    let stats = f
        .room
        .stats(&f.event, t + 56 * SECOND)
        .await
        .expect("stats");
    assert_eq!(stats.abandoned_total, 3);
    assert_eq!(stats.waiting, vec![(Lane::Vip, 0), (Lane::Normal, 1)]);
}

#[tokio::test]
async fn slots_end_at_their_absolute_expiry_whatever_the_heartbeats() {
    let f = fixture().await;
    let r = RoomRules {
        admission_ttl_ms: 60 * SECOND,
        heartbeat_timeout_ms: 30 * SECOND,
        ..rules()
    };
    f.join("ann", &r, OPENS).await;
    let tick = f.tick(&r, OPENS + SECOND).await;
    let expiry = OPENS + 61 * SECOND;
    assert_eq!(
        tick.admitted,
        vec![("ann".to_owned(), Lane::Normal, expiry)]
    );
    // Nobody needs to heartbeat once admitted, and polling does not extend the slot.
    for at in [OPENS + 40 * SECOND, expiry - 1] {
        f.room
            .heartbeat(&f.event, &["ann".to_owned()], at)
            .await
            .expect("heartbeat");
        assert_eq!(
            f.status("ann", &r, at).await,
            Some(Standing::Admitted {
                lane: Lane::Normal,
                expires_at_ms: expiry
            })
        );
        assert_eq!(
            f.room
                .admission(&f.event, "ann", at)
                .await
                .expect("admission"),
            Some(expiry)
        );
        assert!(f.tick(&r, at).await.abandoned.is_empty());
    }
    assert_eq!(
        f.room
            .admission(&f.event, "ann", expiry)
            .await
            .expect("admission"),
        None
    );
    assert_eq!(f.status("ann", &r, expiry).await, None);
    let tick = f.tick(&r, expiry).await;
    assert_eq!(tick.expired, vec!["ann"]);
    assert_eq!(tick.active, 0);

    // Joining again after the slot ran out starts at the back of the line.
    let again = f.join("ann", &r, expiry + 1).await;
    assert!(matches!(
        again,
        Standing::Waiting {
            position: Some(1),
            ..
        }
    ));
}

#[tokio::test]
async fn releasing_or_leaving_frees_the_slot_for_the_next_in_line() {
    let f = fixture().await;
    let r = RoomRules {
        capacity: 1,
        ..rules()
    };
    for user in ["ann", "bob", "cy"] {
        f.join(user, &r, OPENS).await;
    }
    assert_eq!(f.admitted(&r, OPENS + SECOND).await, vec!["ann"]);
    assert!(f.admitted(&r, OPENS + 2 * SECOND).await.is_empty());
    assert!(f.room.release(&f.event, "ann").await.expect("release"));
    assert!(
        !f.room
            .release(&f.event, "ann")
            .await
            .expect("release twice")
    );
    assert_eq!(
        f.room
            .admission(&f.event, "ann", OPENS + 2 * SECOND)
            .await
            .expect("slot"),
        None
    );
    assert_eq!(f.admitted(&r, OPENS + 3 * SECOND).await, vec!["bob"]);
    assert!(f.room.leave(&f.event, "bob").await.expect("leave"));
    assert_eq!(f.admitted(&r, OPENS + 4 * SECOND).await, vec!["cy"]);

    // Leaving the line frees the place at once; leaving twice finds nothing.
    f.join("dee", &r, OPENS + 4 * SECOND).await;
    f.join("eve", &r, OPENS + 4 * SECOND).await;
    assert!(f.room.leave(&f.event, "dee").await.expect("leave"));
    assert!(!f.room.leave(&f.event, "dee").await.expect("leave twice"));
    assert_eq!(f.status("dee", &r, OPENS + 4 * SECOND).await, None);
    assert_eq!(f.position("eve", &r, OPENS + 4 * SECOND).await, Some(1));
    let stats = f
        .room
        .stats(&f.event, OPENS + 4 * SECOND)
        .await
        .expect("stats");
    assert_eq!(
        (stats.left_total, stats.admitted_total, stats.active),
        (2, 3, 1)
    );
}

#[tokio::test]
async fn joins_from_one_address_stop_at_max_joins_per_ip() {
    let f = fixture().await;
    let r = RoomRules {
        max_joins_per_ip: Some(2),
        ..rules()
    };
    let join = |user: &'static str, ip: &'static str| {
        let (room, event, r) = (f.room.clone(), f.event.clone(), r.clone());
        async move {
            room.join(&event, user, Lane::Normal, ip, &r, OPENS, 1)
                .await
        }
    };
    join("ann", "198.51.100.7").await.expect("first");
    join("bob", "198.51.100.7").await.expect("second");
    assert!(matches!(
        join("cy", "198.51.100.7").await,
        Err(RoomError::TooManyJoins)
    ));
    // Asking again for a place one already has is not a new join.
    assert!(!join("ann", "198.51.100.7").await.expect("again").new);
    join("cy", "2001:db8::1").await.expect("another address");
    assert!(f.status("cy", &r, OPENS).await.is_some());
    let stats = f.room.stats(&f.event, OPENS).await.expect("stats");
    assert_eq!(stats.waiting, vec![(Lane::Vip, 0), (Lane::Normal, 3)]);
}

#[tokio::test]
async fn nobody_is_admitted_before_opening_or_while_paused_but_slots_still_expire() {
    let f = fixture().await;
    let r = RoomRules {
        admission_ttl_ms: 10 * SECOND,
        heartbeat_timeout_ms: 3_600 * SECOND,
        ..rules()
    };
    for user in users(30) {
        f.join(&user, &r, OPENS - 60 * SECOND).await;
    }
    for at in [OPENS - 30 * SECOND, OPENS - 1] {
        assert!(f.tick(&r, at).await.admitted.is_empty());
    }
    assert_eq!(f.admitted(&r, OPENS + SECOND).await.len(), 10);
    let paused = RoomRules {
        paused: true,
        ..r.clone()
    };
    let mut expired = 0;
    for s in 2..=20 {
        let tick = f.tick(&paused, OPENS + s * SECOND).await;
        assert!(tick.admitted.is_empty());
        expired += tick.expired.len();
    }
    assert_eq!(expired, 10);
    let stats = f
        .room
        .stats(&f.event, OPENS + 20 * SECOND)
        .await
        .expect("stats");
    assert_eq!((stats.active, stats.admitted_total), (0, 10));
}

#[tokio::test]
async fn rate_credit_does_not_burst_after_a_pause_or_a_leader_gap() {
    let f = fixture().await;
    let r = RoomRules {
        admit_per_second: 10,
        ..rules()
    };
    for user in users(100) {
        f.join(&user, &r, OPENS - SECOND).await;
    }
    assert_eq!(f.admitted(&r, OPENS + SECOND).await.len(), 10);
    let paused = RoomRules {
        paused: true,
        ..r.clone()
    };
    f.tick(&paused, OPENS + 2 * SECOND).await;
    f.tick(&paused, OPENS + 60 * SECOND).await;
    // Resumed: credit starts from nothing, not from a minute of pause.
    assert_eq!(f.admitted(&r, OPENS + 60 * SECOND + 100).await.len(), 1);
    assert_eq!(f.admitted(&r, OPENS + 61 * SECOND + 100).await.len(), 10);
    // The leader died and nobody ticked for a minute: one second's worth, no more.
    assert_eq!(f.admitted(&r, OPENS + 121 * SECOND).await.len(), 10);
    assert_eq!(f.admitted(&r, OPENS + 121 * SECOND + 500).await.len(), 5);
}

#[tokio::test]
async fn one_instance_leads_the_ticker_and_another_takes_over_when_the_lease_runs_out() {
    let f = fixture().await;
    let lead = |holder: &'static str, now: i64| {
        let room = f.room.clone();
        async move { room.lead(holder, now, 5 * SECOND).await.expect("lead") }
    };
    assert!(lead("a", OPENS).await);
    assert!(!lead("b", OPENS + 1).await);
    assert!(lead("a", OPENS + 4 * SECOND).await);
    assert!(!lead("b", OPENS + 8 * SECOND).await, "renewed until 9 s");
    assert!(lead("b", OPENS + 9 * SECOND).await);
    assert!(!lead("a", OPENS + 9 * SECOND + 1).await);
    assert!(lead("b", OPENS + 10 * SECOND).await);
}

#[tokio::test]
async fn scores_keep_every_bit_up_to_two_to_the_fifty_three() {
    let f = fixture().await;
    let r = rules();
    // The highest draw, and one with bits above 52 that must be masked off.
    for (user, random, score) in [
        ("max-draw", OPEN_SCORE_BASE - 1, OPEN_SCORE_BASE - 1),
        ("wide-draw", u64::MAX - 2, OPEN_SCORE_BASE - 3),
        ("odd-draw", (1 << 51) + 12_345, (1 << 51) + 12_345),
    ] {
        let joined = f
            .room
            .join(
                &f.event,
                user,
                Lane::Vip,
                "192.0.2.1",
                &r,
                OPENS - 1,
                random,
            )
            .await
            .expect("join");
        assert!(matches!(joined.standing, Standing::Waiting { score: s, .. } if s == score));
    }
    let after = f.join_in("after-opening", Lane::Vip, &r, OPENS).await;
    assert!(
        matches!(after, Standing::Waiting { score, position: Some(4), .. } if score == OPEN_SCORE_BASE + 1)
    );
    let tick = f
        .tick(
            &RoomRules {
                paused: true,
                ..r.clone()
            },
            OPENS,
        )
        .await;
    assert_eq!(tick.heads[0], (Lane::Vip, Some((1 << 51) + 12_345), 4));
}

#[tokio::test]
async fn an_unreachable_redis_answers_unavailable_instead_of_failing() {
    let url = ServiceUrl::parse("redis://127.0.0.1:1").expect("url");
    let handle = RedisHandle::connect(&url, "bo_test:down:")
        .await
        .expect("a lazy handle");
    let room = RedisRoom::new(handle);
    let r = rules();
    let joined = room
        .join("ev", "ann", Lane::Normal, "192.0.2.1", &r, OPENS, 1)
        .await;
    assert!(
        matches!(joined, Err(RoomError::Unavailable(_))),
        "{joined:?}"
    );
    assert!(matches!(
        room.tick("ev", &r, OPENS).await,
        Err(RoomError::Unavailable(_))
    ));
    assert!(matches!(
        room.lead("me", OPENS, 1).await,
        Err(RoomError::Unavailable(_))
    ));
}
