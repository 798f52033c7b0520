//! The order store port over the queries in `orders` and `shipments`.

use async_trait::async_trait;
use consign_domain::{
    OrderId, Providers, ShipmentId, ShipmentLine, ShipmentRequest, ShipmentState,
};
use consign_ports::{
    BeginCapture, CaptureAttempt, CaptureSettled, CaptureTally, FinalCaptureStanding,
    ImportedOrder, Invoice, KeyedCapture, OrderImport, OrderQuery, OrderStore, OrderView,
    OutboxMessage, RefusedMessage, Reservation, SettleOutcome, ShipmentChanges, ShipmentDetails,
    ShipmentListing, ShipmentQuery, ShipmentView, StoreError, StoreStats, Timestamp,
};

use crate::config::Backend;
use crate::connection::AnyConnection;
use crate::database::Database;
use crate::error::DbError;
use crate::reserved::{ReservedRows, UncapturedRows};
use crate::workflow::CaptureStartRead;
use crate::{deletions, hand_settlements, listing, orders, outbox, shipments, workflow};

#[async_trait]
impl OrderStore for Database {
    async fn import_order(
        &self,
        order: OrderImport,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<ImportedOrder, StoreError> {
        let (imported, snapshot) = self
            .run_write(move |conn| orders::import_order(conn, &order, request_key.as_deref(), now))
            .await?;
        self.snapshots().put(snapshot);
        Ok(imported)
    }

    async fn reserve_shipment(
        &self,
        order: OrderId,
        request: ShipmentRequest,
        providers: Providers,
        details: ShipmentDetails,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let snapshots = self.snapshots();
        // A captured reservation is followed at once by its settle.
        let captures = request.capture;
        let ask = shipments::ReserveAsk {
            installation: self.installation().to_owned(),
            order,
            request,
            providers,
            details,
            request_key,
            now,
        };
        // SQLite: planned here, off its one writer thread, when a snapshot of the order is kept.
        let ahead = match self.backend() {
            Backend::Sqlite => shipments::plan_ahead(&snapshots, &ask),
            Backend::Postgres => None,
        };
        let write = move |conn: &mut AnyConnection| {
            shipments::reserve_shipment(conn, &snapshots, ahead.as_ref(), &ask)
        };
        let reserved = if captures {
            self.run_write_before_more(write).await?
        } else {
            self.run_write(write).await?
        };
        // Kept once the write is committed (a SQLite group commits after all its writes ran):
        // a snapshot only ever holds what the database holds at its version.
        let version = reserved.order_after.as_ref().map(|after| after.version);
        if let Some(after) = reserved.order_after {
            self.snapshots().put(after);
        }
        match (reserved.rows, version) {
            (Some(rows), _) if reserved.reservation.attempt.is_some() => self.reserved().put(rows),
            (Some(rows), Some(version))
                if reserved.reservation.shipment.state == ShipmentState::Uncaptured =>
            {
                self.uncaptured().put(UncapturedRows { rows, version })
            }
            _ => {}
        }
        Ok(reserved.reservation)
    }

    async fn find_by_request_key(
        &self,
        request_key: &str,
    ) -> Result<Option<ShipmentView>, StoreError> {
        let key = request_key.to_owned();
        Ok(self
            .run_short_read(move |conn| workflow::find_by_request_key(conn, &key))
            .await?)
    }

    async fn open_attempt(
        &self,
        shipment: ShipmentId,
    ) -> Result<Option<CaptureAttempt>, StoreError> {
        Ok(self
            .run_short_read(move |conn| shipments::open_attempt(conn, shipment))
            .await?)
    }

    async fn capture_by_request_key(
        &self,
        shipment: ShipmentId,
        request_key: &str,
    ) -> Result<Option<KeyedCapture>, StoreError> {
        let key = request_key.to_owned();
        Ok(self
            .run_short_read(move |conn| shipments::capture_by_request_key(conn, shipment, &key))
            .await?)
    }

    async fn begin_capture(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        providers: Providers,
        on_capture: ShipmentChanges,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<BeginCapture, StoreError> {
        let installation = self.installation().to_owned();
        // SQLite: decided here, off its one writer thread, from the rows this instance kept
        // of the shipment or else from one read; written there if nothing it relied on
        // changed in between.
        let kept = match (self.backend(), order) {
            (Backend::Sqlite, Some(order)) if order != shipment.order => None,
            (Backend::Sqlite, _) => self.uncaptured().take(shipment).and_then(|kept| {
                let snapshot = self.snapshots().get(shipment.order.0)?;
                workflow::decide_from_kept(
                    kept,
                    &snapshot,
                    &installation,
                    shipment,
                    &providers,
                    workflow::StartAsk::new(&on_capture, request_key.as_deref()),
                )
            }),
            (Backend::Postgres, _) => None,
        };
        let read = match (self.backend(), kept) {
            (_, Some(decided)) => decided,
            (Backend::Sqlite, None) => {
                let (installation, providers, on_capture, request_key) = (
                    installation.clone(),
                    providers.clone(),
                    on_capture.clone(),
                    request_key.clone(),
                );
                let read = self
                    .run_short_read(move |conn| {
                        workflow::read_capture_start(
                            conn,
                            &installation,
                            shipment,
                            order,
                            &providers,
                            workflow::StartAsk::new(&on_capture, request_key.as_deref()),
                        )
                    })
                    .await?;
                if let CaptureStartRead::Answered(answer) = read {
                    return Ok(answer);
                }
                read
            }
            // PostgreSQL: its compare-and-set, in `workflow::begin_capture`.
            (Backend::Postgres, None) => CaptureStartRead::Undecided(shipment),
        };
        let written = self
            .run_write_before_more(move |conn| {
                workflow::begin_decided_capture(
                    conn,
                    &installation,
                    &read,
                    order,
                    &providers,
                    workflow::StartAsk::new(&on_capture, request_key.as_deref()),
                    now,
                )
            })
            .await;
        let started = match written {
            Ok(started) => started,
            Err(error) => {
                self.outdated(shipment.order);
                return Err(error.into());
            }
        };
        // Kept once the write is committed, as a reservation's: the order as a start written
        // as decided left it, else forgotten (a locked start bumped its version).
        match started.order_after {
            Some(after) => self.snapshots().put(after),
            None => self.outdated(shipment.order),
        }
        if let Some(rows) = started.rows {
            self.reserved().put(rows);
        }
        Ok(started.begun)
    }

    async fn apply_changes(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        changes: ShipmentChanges,
        now: Timestamp,
    ) -> Result<ShipmentView, StoreError> {
        let written = self
            .run_write(move |conn| workflow::apply_changes(conn, shipment, order, &changes, now))
            .await;
        self.outdated(shipment.order);
        Ok(written?)
    }

    async fn update_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        lines: Option<Vec<ShipmentLine>>,
        gtg: Option<bool>,
        now: Timestamp,
    ) -> Result<ShipmentListing, StoreError> {
        let written = self
            .run_write(move |conn| {
                workflow::update_shipment(conn, shipment, order, lines.as_deref(), gtg, now)
            })
            .await;
        self.outdated(shipment.order);
        Ok(written?)
    }

    async fn delete_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<ShipmentView, StoreError> {
        let written = self
            .run_write(move |conn| {
                workflow::delete_shipment(conn, shipment, order, request_key.as_deref(), now)
            })
            .await;
        self.outdated(shipment.order);
        Ok(written?)
    }

    async fn deleted_by_key(
        &self,
        shipment: ShipmentId,
        request_key: &str,
    ) -> Result<Option<ShipmentView>, StoreError> {
        let key = request_key.to_owned();
        Ok(self
            .run_short_read(move |conn| deletions::deleted_by_key(conn, shipment, &key))
            .await?)
    }

    async fn find_shipment(
        &self,
        shipment: ShipmentId,
    ) -> Result<Option<ShipmentListing>, StoreError> {
        Ok(self
            .run_short_read(move |conn| listing::find_shipment(conn, shipment))
            .await?)
    }

    async fn find_shipments(
        &self,
        shipments: &[ShipmentId],
    ) -> Result<Vec<ShipmentListing>, StoreError> {
        let shipments = shipments.to_vec();
        Ok(self
            .run_short_read(move |conn| listing::find_shipments(conn, &shipments))
            .await?)
    }

    async fn list_shipments(
        &self,
        query: ShipmentQuery,
    ) -> Result<Vec<ShipmentListing>, StoreError> {
        Ok(self
            .run(move |conn| listing::list_shipments(conn, &query))
            .await?)
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        self.check_ready().await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.gather_stats().await
    }

    fn statements_sent(&self) -> u64 {
        Database::statements_sent(self)
    }

    fn writer_commits(&self) -> u64 {
        Database::writer_commits(self)
    }

    async fn find_invoice(&self, shipment: ShipmentId) -> Result<Option<Invoice>, StoreError> {
        Ok(self
            .run_short_read(move |conn| outbox::find_invoice(conn, shipment))
            .await?)
    }

    async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_millis: i64,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        Ok(self
            .run_write(move |conn| outbox::claim(conn, now, lease_millis, limit))
            .await?)
    }

    async fn outbox_sent(&self, ids: &[i64], now: Timestamp) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        Ok(self
            .run_write(move |conn| outbox::mark_sent(conn, &ids, now))
            .await?)
    }

    async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        Ok(self
            .run_write(move |conn| outbox::mark_failed(conn, id, &error, retry_at))
            .await?)
    }

    async fn outbox_refused(&self, id: i64, error: &str, now: Timestamp) -> Result<(), StoreError> {
        let error = error.to_owned();
        Ok(self
            .run_write(move |conn| outbox::mark_refused(conn, id, &error, now))
            .await?)
    }

    async fn refused_messages(&self, limit: u32) -> Result<Vec<RefusedMessage>, StoreError> {
        Ok(self.run(move |conn| outbox::refused(conn, limit)).await?)
    }

    async fn resend_refused(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self
            .run_write(move |conn| outbox::resend(conn, id, now))
            .await?)
    }

    async fn outbox_later(&self, id: i64, why: &str, due_at: Timestamp) -> Result<(), StoreError> {
        let why = why.to_owned();
        Ok(self
            .run_write(move |conn| outbox::put_off(conn, id, &why, due_at))
            .await?)
    }

    async fn settle_capture(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        now: Timestamp,
    ) -> Result<CaptureSettled, StoreError> {
        self.settle_with(attempt, outcome, move |conn, attempt, outcome, reserved| {
            shipments::settle_capture(conn, attempt, outcome, reserved, now)
        })
        .await
    }

    async fn settle_by_hand(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        now: Timestamp,
    ) -> Result<CaptureSettled, StoreError> {
        // The rows kept of the reservation are not used: the locked settle decides.
        self.settle_with(attempt, outcome, move |conn, attempt, outcome, _| {
            hand_settlements::settle_by_hand(conn, attempt, outcome, now)
        })
        .await
    }

    async fn record_unknown(
        &self,
        attempt: &CaptureAttempt,
        reason: &str,
        now: Timestamp,
        review_after_passes: u32,
    ) -> Result<bool, StoreError> {
        let (attempt, reason) = (attempt.clone(), reason.to_owned());
        Ok(self
            .run_write(move |conn| {
                shipments::record_unknown(conn, &attempt, &reason, now, review_after_passes)
            })
            .await?)
    }

    async fn record_waiting(
        &self,
        attempt: &CaptureAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run_write(move |conn| shipments::record_waiting(conn, &attempt, now))
            .await?)
    }

    async fn final_capture_standing(
        &self,
        attempt: &CaptureAttempt,
    ) -> Result<FinalCaptureStanding, StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run_short_read(move |conn| shipments::final_capture_standing(conn, &attempt))
            .await?)
    }

    async fn capture_tally(&self, attempt: &CaptureAttempt) -> Result<CaptureTally, StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run_short_read(move |conn| shipments::capture_tally(conn, &attempt))
            .await?)
    }

    async fn pending_captures(&self, before: Timestamp) -> Result<Vec<CaptureAttempt>, StoreError> {
        Ok(self
            .run(move |conn| shipments::pending_captures(conn, before))
            .await?)
    }

    async fn list_orders(&self, query: OrderQuery) -> Result<Vec<OrderView>, StoreError> {
        // A part of a page without an offset to skip reads by key, bounded work: on the calling
        // thread, whose answer then frees what it read where it was allocated. Read on the
        // blocking pool, each part's memory stayed with the thread that read it until that thread
        // ran again: the benchmark's check of every order peaked 8-9 MiB above the load, against
        // 2.5-4.7 MiB on the calling thread (docs/benchmarks.md, set 23).
        // A part whose first order alone is past the bound is read on the blocking pool instead:
        // its size has no bound, and on the calling thread it would hold up every connection of
        // that HTTP worker for as long as it takes.
        if query.offset == 0 && query.shipments_at_most.is_some() {
            let part = query.clone();
            let read_here =
                move |conn: &mut AnyConnection| orders::list_orders_within_bound(conn, &part);
            if let Some(part) = self.run_short_read(read_here).await? {
                return Ok(part);
            }
        }
        Ok(self
            .run(move |conn| orders::list_orders(conn, &query))
            .await?)
    }
}

impl Database {
    /// A settle of `attempt` written by `write`, given the rows kept of its reservation (taken
    /// whatever the outcome: a settle ends them); then, if it released units, the order's
    /// snapshot is forgotten.
    async fn settle_with<W, T>(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        write: W,
    ) -> Result<T, StoreError>
    where
        W: Fn(
                &mut AnyConnection,
                &CaptureAttempt,
                &SettleOutcome,
                Option<&ReservedRows>,
            ) -> Result<T, DbError>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let attempt = attempt.clone();
        let order = attempt.shipment.order;
        let releases = matches!(outcome, SettleOutcome::Declined { .. });
        let reserved = self.reserved().take(attempt.shipment);
        let settled = self
            .run_write(move |conn| write(conn, &attempt, &outcome, reserved.as_ref()))
            .await;
        if releases {
            self.outdated(order);
        }
        Ok(settled?)
    }
}
