//! A page of `GET orders` read a part at a time, as it is written.
//!
//! A page holds up to 1,000 orders, each with every live shipment. Read whole, it held them all
//! at once: 127-155 MiB in the benchmark, whose 200 large orders end with hundreds of shipments
//! each (docs/benchmarks.md, set 22). Read in parts of about [`SHIPMENTS_PER_PART`] shipments, the
//! server holds one part, whatever the page: the first part is [`FIRST_PART`] orders, and each
//! next one as many orders as the last part's shipments per order say would hold that many
//! (from one order to [`ORDERS_PER_PART`]). One order is never split, so its shipments are the
//! least a part holds. Each part starts where the last ended (by the listing's order, import
//! time then id), not at an offset, so an order imported meanwhile neither repeats nor hides
//! one.

use consign_ports::{OrderQuery, OrderView};

/// The orders of the first part: few enough that large orders do not make it large.
pub const FIRST_PART: u32 = 10;

/// The most orders read at a time.
pub const ORDERS_PER_PART: u32 = 50;

/// The shipments a part is sized to hold, from the shipments per order of the part before.
pub const SHIPMENTS_PER_PART: usize = 1_000;

/// Where the reading of one page stands: which part to read next.
#[derive(Debug, Clone)]
pub struct OrderParts {
    query: OrderQuery,
    /// Orders of the page not read yet.
    left: u32,
    /// Orders the next part asks for (fewer if fewer are left).
    size: u32,
    /// The last part was short: the page has no more.
    ended: bool,
}

impl OrderParts {
    /// The page `query` asks for, nothing read yet.
    pub fn new(query: OrderQuery) -> Self {
        OrderParts {
            left: query.limit,
            query,
            size: FIRST_PART,
            ended: false,
        }
    }

    /// The query of the next part, or `None` once the page is read.
    ///
    /// ```
    /// use consign_ports::OrderQuery;
    /// use consign_service::{OrderParts, FIRST_PART};
    ///
    /// let parts = OrderParts::new(OrderQuery { limit: 120, offset: 7, ..OrderQuery::default() });
    /// let first = parts.next_query().unwrap();
    /// assert_eq!((first.limit, first.offset, first.after), (FIRST_PART, 7, None));
    /// ```
    pub fn next_query(&self) -> Option<OrderQuery> {
        if self.ended || self.left == 0 {
            return None;
        }
        Some(OrderQuery {
            limit: self.left.min(self.size),
            ..self.query.clone()
        })
    }

    /// Takes note of the part just read (with the query [`OrderParts::next_query`] gave).
    pub fn read(&mut self, part: &[OrderView]) {
        let asked = self.left.min(self.size);
        let got = u32::try_from(part.len()).unwrap_or(u32::MAX);
        self.left = self.left.saturating_sub(got);
        let Some(last) = part.last().filter(|_| got >= asked) else {
            self.ended = true;
            return;
        };
        // The offset is spent on the first part; the next starts after its last order.
        self.query.offset = 0;
        self.query.after = Some((last.created_at, last.order.id()));
        let shipments: usize = part.iter().map(|order| order.shipments.len()).sum();
        let fits = part.len().saturating_mul(SHIPMENTS_PER_PART) / shipments.max(1);
        self.size = u32::try_from(fits)
            .unwrap_or(u32::MAX)
            .clamp(1, ORDERS_PER_PART);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sek, view as shipment};
    use consign_domain::{LineId, Money, Order, OrderId, OrderLine, ShipmentState, TaxRate};
    use consign_ports::{Customer, Timestamp};

    /// Order `id`, imported at `at`, with `shipments` live shipments.
    fn view(id: i64, at: i64, shipments: usize) -> OrderView {
        let line = OrderLine::new(
            LineId(1),
            "TSHIRT",
            "T-shirt",
            Money::from_minor(24_950, sek()),
            TaxRate(2500),
            1,
        );
        OrderView {
            order: Order::new(OrderId(id), sek(), vec![line], Money::zero(sek()), None).unwrap(),
            customer_id: 1,
            customer: Customer::default(),
            created_at: Timestamp(at),
            shipments: vec![shipment(ShipmentState::Captured); shipments],
            refunded: Money::zero(sek()),
            returned: Vec::new(),
        }
    }

    /// Reads a page of `total` orders (ids from 1, imported a millisecond apart, order `id`
    /// with `shipments(id)` shipments) through the parts, answering each query as a store
    /// would: the queries asked, and the ids read.
    fn read_page(
        query: OrderQuery,
        total: i64,
        shipments: impl Fn(i64) -> usize,
    ) -> (Vec<OrderQuery>, Vec<i64>) {
        let mut parts = OrderParts::new(query);
        let (mut asked, mut read) = (Vec::new(), Vec::new());
        while let Some(query) = parts.next_query() {
            let after = query.after.map_or(0, |(_, id)| id.0);
            let part: Vec<OrderView> = (after + 1..=total)
                .skip(query.offset as usize)
                .take(query.limit as usize)
                .map(|id| view(id, id, shipments(id)))
                .collect();
            read.extend(part.iter().map(|v| v.order.id().0));
            parts.read(&part);
            asked.push(query);
        }
        (asked, read)
    }

    fn shape(asked: &[OrderQuery]) -> Vec<(u32, u32, Option<i64>)> {
        asked
            .iter()
            .map(|q| (q.limit, q.offset, q.after.map(|(_, id)| id.0)))
            .collect()
    }

    #[test]
    fn a_page_is_read_in_parts_each_after_the_last() {
        let (asked, read) = read_page(
            OrderQuery {
                limit: 120,
                offset: 5,
                ..OrderQuery::default()
            },
            1_000,
            |_| 2,
        );
        assert_eq!(read, (6..=125).collect::<Vec<_>>());
        assert_eq!(
            shape(&asked),
            [
                (10, 5, None),
                (50, 0, Some(15)),
                (50, 0, Some(65)),
                (10, 0, Some(115))
            ]
        );
    }

    /// Orders with many shipments are read a few at a time, one at a time past the part's
    /// shipments, and many at a time again once they are small.
    #[test]
    fn a_part_holds_about_as_many_shipments_whatever_the_orders() {
        let shipments = |id: i64| {
            if id <= 30 {
                250
            } else if id <= 40 {
                3_000
            } else {
                1
            }
        };
        let (asked, read) = read_page(
            OrderQuery {
                limit: 200,
                ..OrderQuery::default()
            },
            1_000,
            shipments,
        );
        assert_eq!(read, (1..=200).collect::<Vec<_>>());
        let sizes: Vec<u32> = asked.iter().map(|q| q.limit).collect();
        // Orders of 250: 4 fit a part. The part that meets the first four orders of 3,000 holds
        // 12,000; then one at a time through them, and the most again once they are small.
        assert_eq!(
            sizes,
            [10, 4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 1, 50, 50, 50, 9]
        );
        for query in &asked {
            let from = query.after.map_or(1, |(_, id)| id.0 + 1);
            let held: usize = (from..from + i64::from(query.limit)).map(shipments).sum();
            // Only a part that was sized from lighter orders than it met holds more.
            assert!(
                held <= 3_000 * 4 || query.limit == 1,
                "{query:?} held {held}"
            );
        }
    }

    #[test]
    fn a_short_part_ends_the_page() {
        let (asked, read) = read_page(
            OrderQuery {
                limit: 1_000,
                ..OrderQuery::default()
            },
            70,
            |_| 1,
        );
        assert_eq!(read, (1..=70).collect::<Vec<_>>());
        assert_eq!(
            shape(&asked),
            [(10, 0, None), (50, 0, Some(10)), (50, 0, Some(60))]
        );
        let (asked, read) = read_page(
            OrderQuery {
                limit: 60,
                ..OrderQuery::default()
            },
            60,
            |_| 1,
        );
        assert_eq!(read.len(), 60);
        assert_eq!(asked.len(), 2, "a full page needs no empty read: {asked:?}");
    }

    #[test]
    fn the_filters_go_with_every_part() {
        let query = OrderQuery {
            customer_id: Some(9),
            newer_than: Some(Timestamp(3)),
            limit: 200,
            ..OrderQuery::default()
        };
        let (asked, _) = read_page(query, 500, |_| 1);
        assert_eq!(asked.len(), 5);
        assert!(asked
            .iter()
            .all(|q| q.customer_id == Some(9) && q.newer_than == Some(Timestamp(3))));
    }
}
