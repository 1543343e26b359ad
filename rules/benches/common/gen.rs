//! Deterministic rule sets and ~1 KB events for the matcher benchmarks (criterion and `busbar rules bench`).
//! A fixed xorshift generator: the same seed gives byte-identical files on every machine.

#![allow(dead_code)]

use serde_json::{Value, json};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Distinct event sources: rules are spread over them as on a shared bus, so a rule matches rarely.
pub const SOURCES: usize = 1000;
const TYPES: &[&str] = &[
    "Order Placed",
    "Order Shipped",
    "Order Cancelled",
    "Payment Captured",
    "Payment Failed",
    "Refund Issued",
    "Customer Created",
    "Customer Updated",
    "Cart Abandoned",
    "Inventory Low",
];
const STATUSES: &[&str] = &[
    "new",
    "pending",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "JPY", "CHF", "SEK"];
const REGIONS: &[&str] = &[
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
];
const TIERS: &[&str] = &["free", "silver", "gold", "platinum"];
const NAMES: &[&str] = &[
    "Alice", "Bob", "Carla", "Dmitri", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Jun",
];
const COUNTRIES: &[&str] = &["FR", "DE", "US", "JP", "IN", "BR", "SE", "NG"];

/// One envelope of about 1 KB (compact JSON).
pub fn event(r: &mut Rng, i: u64) -> String {
    let source = format!("com.example.svc{}", r.below(SOURCES as u64));
    let items: Vec<Value> = (0..3)
        .map(|k| json!({"sku": format!("SKU-{:05}", r.below(20000)), "qty": 1 + r.below(5), "price": (r.below(50000) as f64) / 100.0, "line": k}))
        .collect();
    let name = r.pick(NAMES);
    let e = json!({
        "version": "0",
        "id": format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", r.next() as u32, r.below(65536), r.below(4096), r.below(4096), r.next() >> 16),
        "detail-type": r.pick(TYPES),
        "source": source,
        "account": format!("{:012}", 100000000000u64 + r.below(5)),
        "time": format!("2026-11-{:02}T{:02}:{:02}:{:02}Z", 1 + r.below(28), r.below(24), r.below(60), r.below(60)),
        "region": r.pick(REGIONS),
        "resources": [format!("arn:aws:orders:{}:123456789012:order/{}", r.pick(REGIONS), i)],
        "detail": {
            "orderId": format!("ord-{i:08}"),
            "status": r.pick(STATUSES),
            "total": (r.below(500000) as f64) / 100.0,
            "currency": r.pick(CURRENCIES),
            "customer": {"id": format!("cus-{}", r.below(100000)), "name": name, "tier": r.pick(TIERS), "email": format!("{}@mail{}.example.com", name.to_lowercase(), r.below(20))},
            "items": items,
            "shipping": {"country": r.pick(COUNTRIES), "city": "Springfield", "street": format!("{} Main Street", r.below(999)), "zip": format!("{:05}", r.below(99999)), "express": r.below(2) == 1},
            "clientIp": format!("10.{}.{}.{}", r.below(4), r.below(256), r.below(256)),
            "tags": ["web", r.pick(&["promo", "gift", "b2b", "repeat"])],
            "note": "Please leave the parcel with the neighbour if nobody is at home; ring twice.",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "session": {"id": format!("sess-{:016x}", r.next()), "pages": r.below(40), "referrer": "https://www.example.com/campaigns/autumn"},
        }
    });
    e.to_string()
}

pub fn events(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng::new(seed);
    (0..n as u64).map(|i| event(&mut r, i)).collect()
}

fn source(r: &mut Rng) -> String {
    format!("com.example.svc{}", r.below(SOURCES as u64))
}

/// Rules mixing exact, prefix, numeric and anything-but (a quarter each), all on a source.
pub fn mixed_rule(r: &mut Rng, i: usize) -> Value {
    let src = source(r);
    match i % 4 {
        0 => json!({"source": [src], "detail": {"status": [r.pick(STATUSES), r.pick(STATUSES)]}}),
        1 => {
            json!({"source": [src], "detail-type": [{"prefix": &r.pick(TYPES)[..5]}], "detail": {"customer": {"name": [{"prefix": &r.pick(NAMES)[..2]}]}}})
        }
        2 => {
            let low = r.below(4000);
            json!({"source": [src], "detail": {"total": [{"numeric": [">", low, "<=", low + 500 + r.below(1000)]}]}})
        }
        _ => {
            json!({"source": [src], "detail": {"currency": [{"anything-but": [r.pick(CURRENCIES), r.pick(CURRENCIES)]}], "customer": {"tier": [r.pick(TIERS)]}}})
        }
    }
}

/// Wildcard-heavy rules.
pub fn wildcard_rule(r: &mut Rng, i: usize) -> Value {
    match i % 3 {
        0 => {
            json!({"source": [{"wildcard": format!("com.example.svc{}*", r.below(SOURCES as u64))}], "detail": {"customer": {"email": [{"wildcard": format!("*@mail{}.example.com", r.below(20))}]}}})
        }
        1 => {
            json!({"resources": [{"wildcard": format!("arn:aws:orders:{}:*:order/*{}", r.pick(REGIONS), r.below(10))}]})
        }
        _ => {
            json!({"detail": {"items": {"sku": [{"wildcard": format!("SKU-{}*{}", r.below(3), r.below(10))}]}, "status": [r.pick(STATUSES)]}})
        }
    }
}

/// `$or`-heavy rules.
pub fn or_rule(r: &mut Rng, _i: usize) -> Value {
    json!({
        "detail-type": [r.pick(TYPES)],
        "$or": [
            {"source": [source(r)]},
            {"detail": {"$or": [
                {"status": [r.pick(STATUSES)], "currency": [r.pick(CURRENCIES)]},
                {"total": [{"numeric": [">", r.below(5000)]}], "customer": {"tier": [r.pick(TIERS)]}}
            ]}},
            {"region": [{"prefix": &r.pick(REGIONS)[..3]}], "detail": {"shipping": {"country": [r.pick(COUNTRIES)]}}}
        ]
    })
}

pub fn rules(kind: &str, n: usize, seed: u64) -> Vec<Value> {
    let mut r = Rng::new(seed);
    let f = match kind {
        "mixed" => mixed_rule,
        "wildcard" => wildcard_rule,
        "or" => or_rule,
        other => panic!("unknown rule set {other}"),
    };
    (0..n).map(|i| f(&mut r, i)).collect()
}
