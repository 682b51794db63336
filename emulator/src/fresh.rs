//! Fresh values for new resources: random etags and SAS keys, and the current time as RFC 3339.
//! The bottom layer: used by the model (`resources.rs`, `state.rs`) and the handlers alike.

use base64::Engine as _;
use rand::RngCore as _;

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

pub(crate) fn new_etag() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn new_key() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}
