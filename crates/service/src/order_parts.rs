//! A page of `GET orders` read a part at a time, as it is written.
//!
//! A page holds up to 1,000 orders, each with every live shipment. Read whole, it held them all
//! at once: 127-155 MiB in the benchmark, whose 200 large orders end with hundreds of shipments
//! each (docs/benchmarks.md, set 22). Read in parts, the server holds one part, whatever the
//! page: at most [`SHIPMENTS_PER_PART`] shipments, the store counting them before it reads them,
//! or one order with more (an order is never split). A part asks for [`FIRST_PART`] orders
//! first, then as many (from one to [`ORDERS_PER_PART`]) as the last part's shipments per order
//! say would fit: the store counts the shipments of every order asked for, so asking for about
//! as many as fit keeps that count small (asking for 50 large orders to keep one made the
//! benchmark's check three times as long, set 23). Each part starts where the last ended (by the
//! listing's order, import time then id), not at an offset, so an order imported meanwhile
//! neither repeats nor hides one. A part cut at its shipments is short without being the last,
//! so the page ends at a part that reads nothing, or once its orders are all read.

use consign_ports::{OrderQuery, OrderView};

/// The orders the first part asks for.
pub const FIRST_PART: u32 = 10;

/// The most orders a part asks for.
pub const ORDERS_PER_PART: u32 = 50;

/// The most shipments a part holds, but for a single order with more.
pub const SHIPMENTS_PER_PART: u32 = 1_000;

/// Where the reading of one page stands: which part to read next.
#[derive(Debug, Clone)]
pub struct OrderParts {
    query: OrderQuery,
    /// Orders of the page not read yet.
    left: u32,
    /// Orders the next part asks for (fewer if fewer are left).
    size: u32,
    /// The last part read nothing: the page has no more.
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
    /// use consign_service::{OrderParts, FIRST_PART, SHIPMENTS_PER_PART};
    ///
    /// let parts = OrderParts::new(OrderQuery { limit: 120, offset: 7, ..OrderQuery::default() });
    /// let first = parts.next_query().unwrap();
    /// assert_eq!((first.limit, first.offset, first.after), (FIRST_PART, 7, None));
    /// assert_eq!(first.shipments_at_most, Some(SHIPMENTS_PER_PART));
    /// ```
    pub fn next_query(&self) -> Option<OrderQuery> {
        if self.ended || self.left == 0 {
            return None;
        }
        Some(OrderQuery {
            limit: self.left.min(self.size),
            shipments_at_most: Some(SHIPMENTS_PER_PART),
            ..self.query.clone()
        })
    }

    /// Takes note of the part just read (with the query [`OrderParts::next_query`] gave).
    pub fn read(&mut self, part: &[OrderView]) {
        let Some(last) = part.last() else {
            self.ended = true;
            return;
        };
        self.left = self
            .left
            .saturating_sub(u32::try_from(part.len()).unwrap_or(u32::MAX));
        // The offset is spent on the first part; the next starts after its last order.
        self.query.offset = 0;
        self.query.after = Some((last.created_at, last.order.id()));
        let shipments: usize = part.iter().map(|order| order.shipments.len()).sum();
        let fits = part.len().saturating_mul(SHIPMENTS_PER_PART as usize) / shipments.max(1);
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
    /// would, cutting a part at its shipments: the queries asked, and the parts read.
    fn read_page(
        query: OrderQuery,
        total: i64,
        shipments: impl Fn(i64) -> usize,
    ) -> (Vec<OrderQuery>, Vec<Vec<i64>>) {
        let mut parts = OrderParts::new(query);
        let (mut asked, mut read) = (Vec::new(), Vec::new());
        while let Some(query) = parts.next_query() {
            let after = query.after.map_or(0, |(_, id)| id.0);
            let most = query.shipments_at_most.map_or(usize::MAX, |m| m as usize);
            let mut held = 0;
            let part: Vec<OrderView> = (after + 1..=total)
                .skip(query.offset as usize)
                .take(query.limit as usize)
                .enumerate()
                .take_while(|&(i, id)| {
                    held += shipments(id);
                    i == 0 || held <= most
                })
                .map(|(_, id)| view(id, id, shipments(id)))
                .collect();
            read.push(part.iter().map(|v| v.order.id().0).collect());
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
        assert_eq!(read.concat(), (6..=125).collect::<Vec<_>>());
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

    /// Each part holds at most its shipments, or a single order with more; a part cut short
    /// at its shipments does not end the page.
    #[test]
    fn a_part_holds_at_most_its_shipments_or_one_order() {
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
        assert_eq!(read.concat(), (1..=200).collect::<Vec<_>>());
        let sizes: Vec<usize> = read.iter().map(Vec::len).collect();
        // Orders of 250: 4 to a part, then the two left before the orders of 3,000, each of
        // those alone, one order of 1 (asked for as one of 3,000 would fit), then the most
        // orders a part asks for.
        let mut expected = vec![4; 7];
        expected.extend([2]);
        expected.extend([1; 10]);
        expected.extend([1, 50, 50, 50, 9]);
        assert_eq!(sizes, expected);
        let limits: Vec<u32> = asked.iter().map(|q| q.limit).collect();
        assert_eq!(limits[..3], [FIRST_PART, 4, 4]);
        assert_eq!(limits[limits.len() - 4..], [50, 50, 50, 9]);
        for part in &read {
            let held: usize = part.iter().copied().map(shipments).sum();
            assert!(
                held <= SHIPMENTS_PER_PART as usize || part.len() == 1,
                "{part:?} held {held}"
            );
        }
        assert!(asked
            .iter()
            .all(|q| q.shipments_at_most == Some(SHIPMENTS_PER_PART)));
        // The store counts the shipments of every order asked for: about as many as fit are
        // asked for, so that count stays near what is read (asking for 50 each time, it would
        // count 437,797 shipments here to read 37,660).
        let counted: usize = asked
            .iter()
            .map(|q| {
                let from = q.after.map_or(1, |(_, id)| id.0 + 1) + i64::from(q.offset);
                (from..from + i64::from(q.limit))
                    .map(shipments)
                    .sum::<usize>()
            })
            .sum();
        let read_shipments: usize = read.concat().into_iter().map(shipments).sum();
        assert!(
            counted <= 2 * read_shipments,
            "counted {counted} to read {read_shipments}"
        );
    }

    #[test]
    fn a_page_ends_at_a_part_that_reads_nothing() {
        let (asked, read) = read_page(
            OrderQuery {
                limit: 1_000,
                ..OrderQuery::default()
            },
            70,
            |_| 1,
        );
        assert_eq!(read.concat(), (1..=70).collect::<Vec<_>>());
        assert_eq!(
            shape(&asked),
            [
                (10, 0, None),
                (50, 0, Some(10)),
                (50, 0, Some(60)),
                (50, 0, Some(70))
            ]
        );
        assert!(read.last().unwrap().is_empty());
        let (asked, read) = read_page(
            OrderQuery {
                limit: 60,
                ..OrderQuery::default()
            },
            60,
            |_| 1,
        );
        assert_eq!(read.concat().len(), 60);
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
