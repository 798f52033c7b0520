//! A line's allocated and in-capture units moved by a guarded statement, and the error when a
//! guard finds the line other than the order lock promised.

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::prepared::{execute, statement, Param};

/// Moves a line's counters, guarded so that `0 <= in_capture <= allocated <= quantity` holds.
const MOVE_LINE: &str = "UPDATE order_lines SET allocated = allocated + $1, \
     in_capture = in_capture + $2 \
     WHERE order_id = $3 AND line_id = $4 AND allocated + $1 <= quantity \
     AND in_capture + $2 >= 0 AND in_capture + $2 <= allocated + $1";

/// Adds to a line's allocated and in-capture units; fails (nothing written) when the guards of
/// [`MOVE_LINE`] do not hold.
pub(crate) fn move_line(
    conn: &mut AnyConnection,
    order_id: i64,
    line_id: i64,
    allocated: i32,
    in_capture: i32,
) -> Result<(), DbError> {
    let moved = execute(
        conn,
        statement!(MOVE_LINE),
        vec![
            Param::Integer(allocated),
            Param::Integer(in_capture),
            Param::BigInt(order_id),
            Param::BigInt(line_id),
        ],
    )?;
    if moved != 1 {
        return Err(line_changed(line_id));
    }
    Ok(())
}

/// A guarded line update found the line changed although the order was locked.
pub(crate) fn line_changed(line: i64) -> DbError {
    DbError::Corrupt(format!("line {line} changed under the order lock"))
}
