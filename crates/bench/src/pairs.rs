//! `--pairs N` (SQLite, with `--baseline`): Consign's drive and the ceiling's, alternated in N
//! rounds, so that each ratio compares two runs made seconds apart. On a shared machine the
//! speed drifts between the two halves of one long run by more than the code moves the ratio
//! (the ceiling alone moved between 4,997 and 6,408 shipments/s within ten minutes); the median
//! of paired ratios is the figure to quote. With `--floor`, each round also drives the floor
//! server after the ceiling, so that the floor's ratios are paired the same way.
//!
//! A database slows as it grows, so the three are kept the same size: before the first round
//! the ceiling and the floor make as many shipments as Consign's measured run did on its
//! database, unmeasured, and in each round Consign drives for `--duration` and the ceiling and
//! the floor then make as many shipments as it just made, each timed.

use std::sync::Arc;
use std::time::Instant;

use consign_db::testing::Throwaway;

use crate::floor::Floor;
use crate::load::{self, Limit, Seeded};
use crate::options::Options;
use crate::queued_writer;
use crate::report::Tally;

/// One round: shipments per second of each, measured back to back.
pub struct Round {
    pub consign: f64,
    pub ceiling: f64,
    /// With `--floor`.
    pub floor: Option<f64>,
}

impl Round {
    pub fn ratio(&self) -> f64 {
        self.consign / self.ceiling.max(f64::MIN_POSITIVE)
    }

    /// The floor's throughput as a ratio of the ceiling's.
    pub fn floor_to_ceiling(&self) -> Option<f64> {
        self.floor.map(|f| f / self.ceiling.max(f64::MIN_POSITIVE))
    }

    /// Consign's throughput as a ratio of the floor's.
    pub fn consign_to_floor(&self) -> Option<f64> {
        self.floor.map(|f| self.consign / f.max(f64::MIN_POSITIVE))
    }
}

/// The rounds, and the answers of Consign's drives (to report anything but ok). `made` is how
/// many shipments Consign's database holds beyond the baselines' (its measured run's).
pub async fn run(
    options: &Options,
    client: &reqwest::Client,
    base: &str,
    seeded: &Arc<Seeded>,
    made: u64,
) -> Result<(Vec<Round>, Tally), String> {
    // One database for every round of the ceiling (and one for the floor's), as Consign's
    // serves all of its rounds: each grows as the rounds go, as Consign's does.
    let db = crate::baseline_database(options)?;
    let floor_db = match options.floor {
        true => Some(crate::baseline_database(options)?),
        false => None,
    };
    let floor = match &floor_db {
        Some(floor_db) => Some(
            Floor::start(
                &options.client_url(&floor_db.url),
                options.backend,
                options.orders(),
                options.full_orders(),
            )
            .await?,
        ),
        None => None,
    };
    let measured = async {
        ceiling(options, &db, Limit::Shipments(made))?;
        if let Some(floor) = &floor {
            floor_throughput(options, client, floor, Limit::Shipments(made)).await?;
        }
        rounds(options, client, base, seeded, &db, floor.as_ref()).await
    }
    .await;
    if let Some(floor) = floor {
        floor.stop();
    }
    measured
}

/// The ceiling on `db` until `limit`: its shipments per second.
fn ceiling(options: &Options, db: &Throwaway, limit: Limit) -> Result<f64, String> {
    Ok(queued_writer::run(
        &db.config.target,
        options.clients(),
        limit,
        options.orders(),
        options.uncaptured_percent,
    )?
    .throughput())
}

/// The floor until `limit`: its shipments per second. Any answer but a shipment means the floor
/// did less than it claims: an error.
async fn floor_throughput(
    options: &Options,
    client: &reqwest::Client,
    floor: &Floor,
    limit: Limit,
) -> Result<f64, String> {
    let run = floor.drive(client, options.clients(), limit).await?;
    match run.short_of_shipping() {
        Some(why) => Err(format!("{why}, in a pair")),
        None => Ok(run.measured.throughput()),
    }
}

async fn rounds(
    options: &Options,
    client: &reqwest::Client,
    base: &str,
    seeded: &Arc<Seeded>,
    db: &Throwaway,
    floor: Option<&Floor>,
) -> Result<(Vec<Round>, Tally), String> {
    let mut rounds = Vec::new();
    let mut answers = Tally::default();
    for _ in 0..options.pairs {
        let started = Instant::now();
        let (tally, made) = load::drive_as_asked(options, base, seeded.clone()).await?;
        let consign = made.shipments as f64 / started.elapsed().as_secs_f64();
        answers.merge(tally);
        let limit = Limit::Shipments(made.shipments);
        let ceiling = ceiling(options, db, limit)?;
        let floor = match floor {
            Some(floor) => Some(floor_throughput(options, client, floor, limit).await?),
            None => None,
        };
        rounds.push(Round {
            consign,
            ceiling,
            floor,
        });
    }
    Ok((rounds, answers))
}

/// The median of the rounds' ratios (the mean of the middle two for an even count).
pub fn median_ratio(rounds: &[Round]) -> Option<f64> {
    median(rounds.iter().map(Round::ratio))
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut ratios: Vec<f64> = values.collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(ratios[n / 2]),
        _ => Some((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(consign: f64, ceiling: f64) -> Round {
        Round {
            consign,
            ceiling,
            floor: None,
        }
    }

    #[test]
    fn the_median_is_of_the_pairs_ratios_not_of_the_totals() {
        assert_eq!(median_ratio(&[]), None);
        // Ratios 0.5, 0.9, 0.8: the median is 0.8 (the totals' ratio would be 0.72).
        let rounds = [
            round(500.0, 1000.0),
            round(900.0, 1000.0),
            round(4000.0, 5000.0),
        ];
        assert_eq!(median_ratio(&rounds), Some(0.8));
        let even = [round(1.0, 2.0), round(3.0, 4.0)];
        assert_eq!(median_ratio(&even), Some(0.625));
    }
}
