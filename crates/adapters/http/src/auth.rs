//! `API-Authorization` on everything under the base path, checked before routing.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use consign_service::ServiceError;

use crate::error::ApiError;
use crate::ApiState;

/// Failed authentications per client address (an IPv6 client by its /64). Each failure takes a
/// token from the address's bucket; an address whose bucket is empty is refused with 429 before
/// any key lookup until it refills, so wrong keys cost no database work past the limit.
/// Addresses that never fail are never looked at.
pub struct FailureLimiter {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailureLimiter")
    }
}

impl FailureLimiter {
    /// `per_second` failures a second with bursts of twice that; `None` for 0.
    pub fn per_second(per_second: u32) -> Option<FailureLimiter> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Some(FailureLimiter {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    /// Seconds `ip` must wait before its next attempt, if it used up its failures.
    fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let ip = network_of(ip);
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&ip)?;
        let wait = until.checked_duration_since(Instant::now())?;
        Some(seconds(wait))
    }

    /// Counts a failure of `ip`; answers the wait when this one was past the limit.
    fn failed(&self, ip: IpAddr) -> Option<u64> {
        use governor::clock::{Clock, DefaultClock};
        let ip = network_of(ip);
        let not_until = self.limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= 4096 {
            // Bounded: forget what has expired, and everything if that is not enough; and let
            // the limiter drop addresses whose buckets are full again.
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= 4096 {
                blocked.clear();
            }
            self.limiter.retain_recent();
        }
        blocked.insert(ip, Instant::now() + wait);
        Some(seconds(wait))
    }
}

fn seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Lets the request through with its key's id in the extensions, or answers 401 (503 when the
/// key store is unavailable) without touching anything else.
pub async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<ApiState>>().cloned() else {
        return Ok(request
            .into_response(ApiError::Unauthorized.error_response())
            .map_into_right_body());
    };
    if carries_valid_document_token(&request, &state) {
        let peer = request.peer_addr().map(|a| a.ip());
        if let Some(wait) = peer.and_then(|ip| over_link_limit(&state, ip)) {
            return Ok(request
                .into_response(ApiError::RateLimited(wait).error_response())
                .map_into_right_body());
        }
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let key = request
        .headers()
        .get("API-Authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_owned();
    let peer = request.peer_addr().map(|a| a.ip());
    let failures = state.settings.auth_failures.as_deref().zip(peer);
    let verified = match state.consign.authenticate_cached(&key) {
        Some(id) => Ok(id),
        None => {
            // A lookup is due: not for an address that used up its failures, unless the key
            // was verified lately (one client's wrong keys do not shut out the others that
            // share its address, a load balancer's say).
            if let Some(wait) = failures
                .and_then(|(limiter, ip)| limiter.blocked_for(ip))
                .filter(|_| !state.consign.recently_verified(&key))
            {
                return Ok(request
                    .into_response(ApiError::RateLimited(wait).error_response())
                    .map_into_right_body());
            }
            state.consign.authenticate(&key).await
        }
    };
    match verified {
        Ok(id) => {
            if let Some(wait) = over_rate_limit(&state, id) {
                return Ok(request
                    .into_response(ApiError::RateLimited(wait).error_response())
                    .map_into_right_body());
            }
            request.extensions_mut().insert(id);
            next.call(request)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(error) => {
            let mut error = ApiError::from(error);
            if let (ApiError::Service(ServiceError::Unauthorized), Some((limiter, ip))) =
                (&error, failures)
            {
                if let Some(wait) = limiter.failed(ip) {
                    error = ApiError::RateLimited(wait);
                }
            }
            Ok(request
                .into_response(error.error_response())
                .map_into_right_body())
        }
    }
}

/// A document URL whose `token` was signed for exactly this shipment and kind, and is still
/// valid, needs no API key (a warehouse prints it from the link, as with Centra's links).
fn carries_valid_document_token(request: &ServiceRequest, state: &ApiState) -> bool {
    if request.method() != actix_web::http::Method::GET {
        return false;
    }
    let Some(rest) = request
        .path()
        .strip_prefix(state.settings.base_path.as_str())
        .and_then(|p| p.strip_prefix("/documents/"))
    else {
        return false;
    };
    let Some((shipment, file)) = rest.split_once('/') else {
        return false;
    };
    let Some(document) = crate::routes::documents::file_of(file) else {
        return false;
    };
    form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .is_some_and(|(_, token)| {
            state
                .settings
                .documents
                .verify(shipment, &document.slug(), &token)
        })
}

/// Seconds to wait when this key has used up its requests for now.
fn over_rate_limit(state: &ApiState, key: consign_ports::ApiKeyId) -> Option<u64> {
    let limiter = state.settings.rate_limit.as_ref()?;
    limiter.check_key(&key.0).err().map(wait_seconds)
}

/// Seconds to wait when this address has used up its document-link requests for now. A link
/// lets its holder in without a key, so without this a leaked or looping link could have PDFs
/// laid out as fast as it asks.
fn over_link_limit(state: &ApiState, ip: IpAddr) -> Option<u64> {
    let limiter = state.settings.link_limit.as_ref()?;
    // Bounded: past 4,096 addresses the limiter drops those whose buckets are full again, but
    // only every 4,096th request, as it walks the whole map to do so.
    if limiter.len() >= 4096
        && LINK_CHECKS
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
    {
        limiter.retain_recent();
    }
    limiter.check_key(&network_of(ip)).err().map(wait_seconds)
}

/// Link requests counted since start, for the limiter's housekeeping.
static LINK_CHECKS: AtomicU64 = AtomicU64::new(0);

/// The address a limit is kept for: an IPv6 client is counted by its /64, the block a single
/// host is usually given, so a client cannot take a fresh budget with each address of it. An
/// IPv4 client reaching a listener on `[::]` arrives as `::ffff:a.b.c.d`: counted as its IPv4
/// address (masked, every such client would share one budget).
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
        v4 => v4,
    }
}

fn wait_seconds(
    not_until: governor::NotUntil<
        <governor::clock::DefaultClock as governor::clock::Clock>::Instant,
    >,
) -> u64 {
    use governor::clock::{Clock, DefaultClock};
    seconds(not_until.wait_time_from(DefaultClock::default().now()))
}

#[cfg(test)]
mod tests {
    use super::network_of;
    use std::net::IpAddr;

    /// A link holder on IPv6 is counted by its /64: every address of the block shares one
    /// budget, another block has its own; an IPv4 address is counted as it is.
    #[test]
    fn link_limits_count_an_ipv6_client_by_its_block() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network_of(ip("2001:db8:1:2::7")), ip("2001:db8:1:2::"));
        assert_eq!(
            network_of(ip("2001:db8:1:2:ffff:1:2:3")),
            network_of(ip("2001:db8:1:2::7"))
        );
        assert_ne!(network_of(ip("2001:db8:1:3::7")), ip("2001:db8:1:2::"));
        assert_eq!(network_of(ip("192.0.2.7")), ip("192.0.2.7"));
        // An IPv4 client of a dual-stack listener keeps its own budget.
        assert_eq!(network_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(
            network_of(ip("::ffff:192.0.2.7")),
            network_of(ip("::ffff:192.0.2.8"))
        );
    }
}
