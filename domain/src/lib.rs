//! billstream's write model: aggregates on cqrs-es, the commands they accept, the events they
//! emit and the rules they protect. Nothing here knows about HTTP or SQL; what the rules need
//! from the outside world (uniqueness, the clock) comes in through the traits in [`ports`].

pub mod clock;
pub mod credit;
pub mod currency;
pub mod customer;
pub mod email;
pub mod id;
pub mod invoice;
pub mod money;
pub mod organization;
pub mod payment;
pub mod payment_method;
pub mod plan;
pub mod ports;
pub mod provider;
pub mod subscription;
pub mod tenant;
pub mod top_up;
pub mod upcast;
