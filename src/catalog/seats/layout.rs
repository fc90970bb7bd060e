//! The seat-map request (explicit sections → rows → seats, or generator blocks), its expansion
//! into seats in layout order, validation, and the layout document. Plain functions, no I/O.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// Most seats one performance may have, whatever its capacity: bounds the memory a request can
/// make us spend and keeps the layout document under MariaDB's default 16 MiB packet.
pub const MAX_SEATS: usize = 100_000;
/// Largest stored layout document (bytes); see [`MAX_SEATS`].
pub const MAX_DOCUMENT: usize = 14 * 1024 * 1024;
/// Longest section name (the label `section-row-seat` must fit the 64-character column).
const MAX_SECTION: usize = 30;
/// Longest row or seat label.
const MAX_PART: usize = 16;
/// Longest grade.
const MAX_GRADE: usize = 32;
/// Most rows or seats per row in one generator block.
const MAX_BLOCK_SIDE: i64 = 10_000;
/// Largest first row or seat number of a block.
const MAX_FIRST: i64 = 1_000_000;
/// Field errors reported at most; a 50,000-seat mistake should not answer with 50,000 lines.
const MAX_ERRORS: usize = 20;

/// A whole seat map. Seats take their positions in this order: every explicit section (rows and
/// seats in the order given), then every generator block (row by row, seat by seat).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sections": [{"name": "Floor", "grade": "VIP", "rows": [
        {"label": "A", "seats": [{"label": "1", "x": 100, "y": 40}, {"label": "2", "x": 120, "y": 40, "grade": "R"}]}
    ]}],
    "blocks": [{"section": "North", "rows": 20, "seats_per_row": 30, "grade": "S", "x": 0, "y": 200,
                "seat_spacing": 12, "row_spacing": 14, "row_labels": "LETTERS"}]
}))]
pub struct SeatMapBody {
    /// Sections drawn seat by seat.
    #[serde(default)]
    pub sections: Vec<SectionBody>,
    /// Rectangular blocks generated from a few numbers.
    #[serde(default)]
    pub blocks: Vec<BlockBody>,
}

/// A section given seat by seat.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionBody {
    /// Section name (1..=30 characters).
    pub name: String,
    /// Grade for seats that name none themselves (nor their row).
    pub grade: Option<String>,
    /// Rows in order.
    pub rows: Vec<RowBody>,
}

/// A row of an explicit section.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowBody {
    /// Row label (1..=16 characters).
    pub label: String,
    /// Grade for seats that name none themselves.
    pub grade: Option<String>,
    /// Seats in order.
    pub seats: Vec<SeatBody>,
}

/// One seat of an explicit row.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatBody {
    /// Seat label (1..=16 characters).
    pub label: String,
    /// Price grade (1..=32 characters); falls back to the row's, then the section's.
    pub grade: Option<String>,
    /// Drawing x.
    pub x: i32,
    /// Drawing y.
    pub y: i32,
}

/// How a generator block labels its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowLabels {
    /// `1`, `2`, … (from `first_row`).
    #[default]
    Numbers,
    /// `A` … `Z`, `AA`, `AB`, … (`first_row` 1 is `A`).
    Letters,
}

/// A rectangular block: `rows` × `seats_per_row` seats of one grade, the first seat at (`x`, `y`),
/// seats `seat_spacing` apart along x and rows `row_spacing` apart along y.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// Section name (1..=30 characters).
    pub section: String,
    /// Number of rows (1..=10000).
    pub rows: i64,
    /// Seats in each row (1..=10000).
    pub seats_per_row: i64,
    /// Price grade (1..=32 characters).
    pub grade: String,
    /// x of the first seat.
    pub x: i32,
    /// y of the first row.
    pub y: i32,
    /// Distance between neighbouring seats (default 10; negative draws right to left).
    #[serde(default = "default_spacing")]
    pub seat_spacing: i32,
    /// Distance between rows (default 10; negative draws bottom to top).
    #[serde(default = "default_spacing")]
    pub row_spacing: i32,
    /// Number of the first row (default 1).
    #[serde(default = "default_first")]
    pub first_row: i64,
    /// Number of the first seat in each row (default 1).
    #[serde(default = "default_first")]
    pub first_seat: i64,
    /// `NUMBERS` (default) or `LETTERS`.
    #[serde(default)]
    pub row_labels: RowLabels,
}

fn default_spacing() -> i32 {
    10
}

fn default_first() -> i64 {
    1
}

/// A seat after expansion, in layout order (its index is its `position`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedSeat {
    /// `section-row-seat`, unique per performance.
    pub label: String,
    /// Section name.
    pub section: String,
    /// Row label.
    pub row: String,
    /// Seat label.
    pub seat: String,
    /// Price grade.
    pub grade: String,
    /// Drawing x.
    pub x: i32,
    /// Drawing y.
    pub y: i32,
}

/// Seats of one grade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GradeCount {
    /// Grade.
    pub grade: String,
    /// Seats of that grade.
    pub seat_count: i64,
}

/// The smallest rectangle holding every seat's (x, y).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Bounds {
    /// Least x.
    pub min_x: i32,
    /// Least y.
    pub min_y: i32,
    /// Greatest x.
    pub max_x: i32,
    /// Greatest y.
    pub max_y: i32,
}

/// An expanded, validated seat map.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Seats in layout order.
    pub seats: Vec<PlannedSeat>,
    /// Grades in order of first appearance, with their counts.
    pub grades: Vec<GradeCount>,
    /// Bounding box.
    pub bounds: Bounds,
}

/// Collects field errors up to [`MAX_ERRORS`].
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, error: FieldError) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(error);
        }
    }
    fn full(&self) -> bool {
        self.0.len() >= MAX_ERRORS
    }
}

/// Checks one label part: trimmed, 1..=`max` characters, no control characters. HTML is not
/// special: labels are data, shown as text by whoever draws them.
fn part(errors: &mut Errors, field: &str, raw: &str, max: usize) -> Option<String> {
    let value = raw.trim();
    let len = value.chars().count();
    let problem = if len == 0 {
        Some(("required", "must not be empty".to_owned()))
    } else if len > max {
        Some(("too_long", format!("must be at most {max} characters")))
    } else if value.chars().any(crate::infra::text::is_forbidden) {
        Some((
            "invalid_characters",
            crate::infra::text::FORBIDDEN_MESSAGE.to_owned(),
        ))
    } else {
        None
    };
    match problem {
        Some((code, message)) => {
            errors.push(FieldError::new(field, code, message));
            None
        }
        None => Some(value.to_owned()),
    }
}

/// Spreadsheet-style letters: 1 → `A`, 26 → `Z`, 27 → `AA`.
pub fn letters(mut n: i64) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        // `n % 26` is 0..=25, so the byte is an ASCII capital.
        out.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// How many seats the body describes, counted without expanding (so a block of a billion seats
/// is refused before it is built). `None` when a block's numbers are out of range.
fn declared_count(body: &SeatMapBody) -> Option<i64> {
    let explicit: usize = body
        .sections
        .iter()
        .flat_map(|s| s.rows.iter())
        .map(|r| r.seats.len())
        .sum();
    let mut total = i64::try_from(explicit).ok()?;
    for block in &body.blocks {
        if !(1..=MAX_BLOCK_SIDE).contains(&block.rows)
            || !(1..=MAX_BLOCK_SIDE).contains(&block.seats_per_row)
        {
            continue; // reported by the block's own validation
        }
        total = total.checked_add(block.rows * block.seats_per_row)?;
    }
    Some(total)
}

/// Expands and validates a seat map for a performance of the given capacity.
pub fn expand(body: &SeatMapBody, capacity: i64) -> Result<Plan, Vec<FieldError>> {
    let count = declared_count(body).unwrap_or(i64::MAX);
    if count == 0 && body.blocks.is_empty() {
        return Err(vec![FieldError::new(
            "sections",
            "required",
            "send at least one seat, in sections or blocks",
        )]);
    }
    if count > capacity {
        return Err(vec![FieldError::new(
            "seats",
            "exceeds_capacity",
            format!("{count} seats, but the performance's capacity is {capacity}"),
        )]);
    }
    if count > MAX_SEATS as i64 {
        return Err(vec![FieldError::new(
            "seats",
            "too_many_seats",
            format!("{count} seats; a seat map holds at most {MAX_SEATS}"),
        )]);
    }
    let mut errors = Errors::default();
    let mut seats = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for (i, section) in body.sections.iter().enumerate() {
        explicit_section(&mut errors, &mut seats, i, section);
        if errors.full() {
            break;
        }
    }
    for (i, block) in body.blocks.iter().enumerate() {
        if errors.full() {
            break;
        }
        generate_block(&mut errors, &mut seats, i, block);
    }
    find_duplicates(&mut errors, body, &seats);
    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    let grades = grade_counts(&seats);
    let bounds = bounds(&seats);
    Ok(Plan {
        seats,
        grades,
        bounds,
    })
}

fn explicit_section(
    errors: &mut Errors,
    seats: &mut Vec<PlannedSeat>,
    i: usize,
    section: &SectionBody,
) {
    let name = part(
        errors,
        &format!("sections[{i}].name"),
        &section.name,
        MAX_SECTION,
    );
    let section_grade = section
        .grade
        .as_ref()
        .and_then(|g| part(errors, &format!("sections[{i}].grade"), g, MAX_GRADE));
    for (j, row) in section.rows.iter().enumerate() {
        let row_field = format!("sections[{i}].rows[{j}]");
        let row_label = part(errors, &format!("{row_field}.label"), &row.label, MAX_PART);
        let row_grade = row
            .grade
            .as_ref()
            .and_then(|g| part(errors, &format!("{row_field}.grade"), g, MAX_GRADE));
        for (k, seat) in row.seats.iter().enumerate() {
            if errors.full() {
                return;
            }
            let field = format!("{row_field}.seats[{k}]");
            let label = part(errors, &format!("{field}.label"), &seat.label, MAX_PART);
            let grade = match &seat.grade {
                Some(g) => part(errors, &format!("{field}.grade"), g, MAX_GRADE),
                None => match row_grade.clone().or_else(|| section_grade.clone()) {
                    Some(g) => Some(g),
                    None => {
                        errors.push(FieldError::new(
                            &format!("{field}.grade"),
                            "required",
                            "give a grade on the seat, its row or its section",
                        ));
                        None
                    }
                },
            };
            if let (Some(name), Some(row), Some(label), Some(grade)) =
                (&name, &row_label, label, grade)
            {
                seats.push(PlannedSeat {
                    label: format!("{name}-{row}-{label}"),
                    section: name.clone(),
                    row: row.clone(),
                    seat: label,
                    grade,
                    x: seat.x,
                    y: seat.y,
                });
            }
        }
    }
}

fn generate_block(errors: &mut Errors, seats: &mut Vec<PlannedSeat>, i: usize, block: &BlockBody) {
    let field = format!("blocks[{i}]");
    let section = part(
        errors,
        &format!("{field}.section"),
        &block.section,
        MAX_SECTION,
    );
    let grade = part(errors, &format!("{field}.grade"), &block.grade, MAX_GRADE);
    let mut ok = section.is_some() && grade.is_some();
    for (name, value, range) in [
        ("rows", block.rows, 1..=MAX_BLOCK_SIDE),
        ("seats_per_row", block.seats_per_row, 1..=MAX_BLOCK_SIDE),
        ("first_row", block.first_row, 0..=MAX_FIRST),
        ("first_seat", block.first_seat, 0..=MAX_FIRST),
    ] {
        if !range.contains(&value) {
            errors.push(FieldError::new(
                &format!("{field}.{name}"),
                "out_of_range",
                format!("must be {}..={}", range.start(), range.end()),
            ));
            ok = false;
        }
    }
    if block.row_labels == RowLabels::Letters && block.first_row < 1 {
        errors.push(FieldError::new(
            &format!("{field}.first_row"),
            "out_of_range",
            "lettered rows start at 1 (A)",
        ));
        ok = false;
    }
    // Both corners must be drawable; the seats between them then are too.
    let far = |start: i32, steps: i64, spacing: i32| {
        i32::try_from(i64::from(start) + (steps - 1) * i64::from(spacing)).is_ok()
    };
    if ok
        && !(far(block.x, block.seats_per_row, block.seat_spacing)
            && far(block.y, block.rows, block.row_spacing))
    {
        errors.push(FieldError::new(
            &field,
            "out_of_range",
            "the block's far corner lies outside 32-bit coordinates",
        ));
        ok = false;
    }
    let (Some(section), Some(grade), true) = (section, grade, ok) else {
        return;
    };
    for r in 0..block.rows {
        let row = match block.row_labels {
            RowLabels::Numbers => (block.first_row + r).to_string(),
            RowLabels::Letters => letters(block.first_row + r),
        };
        if row.len() > MAX_PART {
            errors.push(FieldError::new(
                &format!("{field}.rows"),
                "too_long",
                "row labels would exceed 16 characters",
            ));
            return;
        }
        // In range: checked above for the far corner, and every step lies between.
        let y = i64::from(block.y) + r * i64::from(block.row_spacing);
        for s in 0..block.seats_per_row {
            let seat = (block.first_seat + s).to_string();
            let x = i64::from(block.x) + s * i64::from(block.seat_spacing);
            seats.push(PlannedSeat {
                label: format!("{section}-{row}-{seat}"),
                section: section.clone(),
                row: row.clone(),
                seat,
                grade: grade.clone(),
                x: i32::try_from(x).unwrap_or(i32::MAX),
                y: i32::try_from(y).unwrap_or(i32::MAX),
            });
        }
    }
}

/// Labels are compared case-insensitively: MariaDB's unique index (a `_ci` collation) would
/// refuse `a-1-1` beside `A-1-1`, and SQLite must answer the same.
fn find_duplicates(errors: &mut Errors, body: &SeatMapBody, seats: &[PlannedSeat]) {
    let explicit: usize = body
        .sections
        .iter()
        .flat_map(|s| s.rows.iter())
        .map(|r| r.seats.len())
        .sum();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(seats.len());
    for (position, seat) in seats.iter().enumerate() {
        if let Some(first) = seen.insert(seat.label.to_lowercase(), position) {
            let place = if position < explicit {
                "sections"
            } else {
                "blocks"
            };
            errors.push(FieldError::new(
                place,
                "duplicate_label",
                format!(
                    "seat {} (position {position}) repeats the label of position {first}",
                    seat.label
                ),
            ));
            if errors.full() {
                return;
            }
        }
    }
}

fn grade_counts(seats: &[PlannedSeat]) -> Vec<GradeCount> {
    // Indexed by a map: a hostile map may give every seat its own grade.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut grades: Vec<GradeCount> = Vec::new();
    for seat in seats {
        let i = *index.entry(seat.grade.as_str()).or_insert_with(|| {
            grades.push(GradeCount {
                grade: seat.grade.clone(),
                seat_count: 0,
            });
            grades.len() - 1
        });
        grades[i].seat_count += 1;
    }
    grades
}

fn bounds(seats: &[PlannedSeat]) -> Bounds {
    let mut b = Bounds {
        min_x: i32::MAX,
        min_y: i32::MAX,
        max_x: i32::MIN,
        max_y: i32::MIN,
    };
    for s in seats {
        b.min_x = b.min_x.min(s.x);
        b.min_y = b.min_y.min(s.y);
        b.max_x = b.max_x.max(s.x);
        b.max_y = b.max_y.max(s.y);
    }
    if seats.is_empty() {
        b = Bounds {
            min_x: 0,
            min_y: 0,
            max_x: 0,
            max_y: 0,
        };
    }
    b
}

/// One seat as the layout document lists it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LayoutSeat {
    /// Seat id (what checkout takes).
    pub id: String,
    /// `section-row-seat`.
    pub label: String,
    /// Section.
    pub section: String,
    /// Row.
    pub row: String,
    /// Seat.
    pub seat: String,
    /// Price grade.
    pub grade: String,
    /// Drawing x.
    pub x: i32,
    /// Drawing y.
    pub y: i32,
}

/// `GET …/seats/layout`: immutable for a version. A seat's index in `seats` is its `position`,
/// the index of its 2 bits in the state document.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"performance_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1a00", "event_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b0f00",
    "version": 3, "seat_count": 2, "grades": [{"grade": "VIP", "seat_count": 2}],
    "bounds": {"min_x": 100, "min_y": 40, "max_x": 120, "max_y": 40},
    "seats": [{"id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1a01", "label": "Floor-A-1", "section": "Floor", "row": "A", "seat": "1", "grade": "VIP", "x": 100, "y": 40},
              {"id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1a02", "label": "Floor-A-2", "section": "Floor", "row": "A", "seat": "2", "grade": "VIP", "x": 120, "y": 40}]}))]
pub struct LayoutDocument {
    /// Performance.
    pub performance_id: String,
    /// Event.
    pub event_id: String,
    /// Layout version (also the `ETag`).
    pub version: i32,
    /// Number of seats.
    pub seat_count: i64,
    /// Grades in order of first appearance, with their seat counts.
    pub grades: Vec<GradeCount>,
    /// Bounding box of every seat's (x, y).
    pub bounds: Bounds,
    /// Seats in layout order.
    pub seats: Vec<LayoutSeat>,
}

/// Everything of the layout document except `version` (known only inside the transaction),
/// with the large `seats` array already serialized, so the transaction only splices text.
#[derive(Clone, Debug)]
pub struct PreparedDocument {
    head: String,
    seats_json: String,
}

#[derive(Serialize)]
struct Head<'a> {
    performance_id: &'a str,
    event_id: &'a str,
    seat_count: i64,
    grades: &'a [GradeCount],
    bounds: Bounds,
}

impl PreparedDocument {
    /// Serializes the plan's seats with their ids (same order).
    pub fn new(
        plan: &Plan,
        ids: &[String],
        performance_id: &str,
        event_id: &str,
    ) -> serde_json::Result<Self> {
        let seats: Vec<LayoutSeat> = plan
            .seats
            .iter()
            .zip(ids)
            .map(|(s, id)| LayoutSeat {
                id: id.clone(),
                label: s.label.clone(),
                section: s.section.clone(),
                row: s.row.clone(),
                seat: s.seat.clone(),
                grade: s.grade.clone(),
                x: s.x,
                y: s.y,
            })
            .collect();
        let seat_count = i64::try_from(seats.len()).unwrap_or(i64::MAX);
        let head = serde_json::to_string(&Head {
            performance_id,
            event_id,
            seat_count,
            grades: &plan.grades,
            bounds: plan.bounds,
        })?;
        Ok(Self {
            head,
            seats_json: serde_json::to_string(&seats)?,
        })
    }

    /// Approximate size of the finished document.
    pub fn len(&self) -> usize {
        self.head.len() + self.seats_json.len() + 20
    }

    /// Whether the document would be empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.seats_json.is_empty()
    }

    /// The finished document for a version: `{"version":N,` + the head object's fields +
    /// `,"seats":[…]}` (`serde_json` writes `Head` as one non-empty object).
    pub fn finish(&self, version: i32) -> String {
        let fields = self
            .head
            .strip_prefix('{')
            .and_then(|h| h.strip_suffix('}'))
            .unwrap_or_default();
        let mut doc = String::with_capacity(fields.len() + self.seats_json.len() + 32);
        doc.push_str(&format!("{{\"version\":{version},"));
        doc.push_str(fields);
        doc.push_str(",\"seats\":");
        doc.push_str(&self.seats_json);
        doc.push('}');
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(label: &str, x: i32, y: i32) -> SeatBody {
        SeatBody {
            label: label.into(),
            grade: None,
            x,
            y,
        }
    }

    fn block(section: &str, rows: i64, per_row: i64) -> BlockBody {
        BlockBody {
            section: section.into(),
            rows,
            seats_per_row: per_row,
            grade: "R".into(),
            x: 0,
            y: 0,
            seat_spacing: 10,
            row_spacing: 20,
            first_row: 1,
            first_seat: 1,
            row_labels: RowLabels::Numbers,
        }
    }

    fn explicit() -> SeatMapBody {
        SeatMapBody {
            sections: vec![SectionBody {
                name: " Floor ".into(),
                grade: Some("VIP".into()),
                rows: vec![
                    RowBody {
                        label: "A".into(),
                        grade: None,
                        seats: vec![seat("1", 5, 7), seat("2", 15, 7)],
                    },
                    RowBody {
                        label: "B".into(),
                        grade: Some("R".into()),
                        seats: vec![SeatBody {
                            grade: Some("S".into()),
                            ..seat("1", -3, 30)
                        }],
                    },
                ],
            }],
            blocks: vec![],
        }
    }

    #[test]
    fn explicit_seats_keep_their_order_and_inherit_grades() {
        let plan = expand(&explicit(), 10).expect("valid");
        let labels: Vec<_> = plan.seats.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["Floor-A-1", "Floor-A-2", "Floor-B-1"]);
        let grades: Vec<_> = plan.seats.iter().map(|s| s.grade.as_str()).collect();
        assert_eq!(grades, ["VIP", "VIP", "S"]);
        assert_eq!(
            plan.bounds,
            Bounds {
                min_x: -3,
                min_y: 7,
                max_x: 15,
                max_y: 30
            }
        );
        assert_eq!(plan.grades.len(), 2);
        assert_eq!(plan.grades[0].seat_count, 2);
    }

    #[test]
    fn blocks_expand_row_by_row_with_spacing() {
        let mut b = block("North", 2, 3);
        b.x = 100;
        b.y = 50;
        b.row_labels = RowLabels::Letters;
        let plan = expand(
            &SeatMapBody {
                sections: vec![],
                blocks: vec![b],
            },
            6,
        )
        .expect("valid");
        let got: Vec<_> = plan
            .seats
            .iter()
            .map(|s| (s.label.as_str(), s.x, s.y))
            .collect();
        assert_eq!(
            got,
            [
                ("North-A-1", 100, 50),
                ("North-A-2", 110, 50),
                ("North-A-3", 120, 50),
                ("North-B-1", 100, 70),
                ("North-B-2", 110, 70),
                ("North-B-3", 120, 70)
            ]
        );
    }

    #[test]
    fn letters_count_like_spreadsheet_columns() {
        assert_eq!(letters(1), "A");
        assert_eq!(letters(26), "Z");
        assert_eq!(letters(27), "AA");
        assert_eq!(letters(52), "AZ");
        assert_eq!(letters(703), "AAA");
    }

    #[test]
    fn duplicates_are_found_regardless_of_case() {
        let mut body = explicit();
        body.sections[0].rows[1].label = "a".into();
        let errors = expand(&body, 10).expect_err("duplicate");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "duplicate_label");
        assert!(errors[0].message.contains("Floor-a-1"));
    }

    #[test]
    fn capacity_is_checked_before_anything_is_built() {
        let body = SeatMapBody {
            sections: vec![],
            blocks: vec![block("Huge", 10_000, 10_000)],
        };
        let errors = expand(&body, 50_000).expect_err("too many");
        assert_eq!(errors[0].code, "exceeds_capacity");
        let errors = expand(&body, i64::MAX).expect_err("too many");
        assert_eq!(errors[0].code, "too_many_seats");
    }

    #[test]
    fn bad_parts_are_reported_with_their_paths() {
        let mut body = explicit();
        body.sections[0].rows[0].seats[0].label = " ".into();
        body.sections[0].rows[0].seats[1].label = "x\u{7}".into();
        body.sections[0].grade = None;
        let errors = expand(&body, 10).expect_err("invalid");
        let fields: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("sections[0].rows[0].seats[0].label", "required"),
                ("sections[0].rows[0].seats[0].grade", "required"),
                ("sections[0].rows[0].seats[1].label", "invalid_characters"),
                ("sections[0].rows[0].seats[1].grade", "required"),
            ]
        );
    }

    #[test]
    fn blocks_outside_coordinates_or_ranges_are_refused() {
        let mut b = block("Edge", 2, 2);
        b.x = i32::MAX;
        let errors = expand(
            &SeatMapBody {
                sections: vec![],
                blocks: vec![b, block("Zero", 0, 5)],
            },
            100,
        )
        .expect_err("invalid");
        assert_eq!(errors[0].field, "blocks[0]");
        assert_eq!(errors[1].field, "blocks[1].rows");
    }

    #[test]
    fn an_empty_map_is_refused() {
        let errors = expand(&SeatMapBody::default(), 10).expect_err("empty");
        assert_eq!(errors[0].code, "required");
    }

    #[test]
    fn html_in_labels_is_kept_as_text() {
        let mut body = explicit();
        body.sections[0].name = "<b>VIP</b>".into();
        let plan = expand(&body, 10).expect("valid");
        assert_eq!(plan.seats[0].label, "<b>VIP</b>-A-1");
    }

    #[test]
    fn the_finished_document_is_the_full_layout() {
        let plan = expand(&explicit(), 10).expect("valid");
        let ids: Vec<String> = (0..plan.seats.len()).map(|i| format!("id{i}")).collect();
        let prepared = PreparedDocument::new(&plan, &ids, "p1", "e1").expect("json");
        let doc: LayoutDocument =
            serde_json::from_str(&prepared.finish(7)).expect("valid document");
        assert_eq!(doc.version, 7);
        assert_eq!(doc.seat_count, 3);
        assert_eq!(doc.performance_id, "p1");
        assert_eq!(doc.seats[2].id, "id2");
        assert_eq!(doc.seats[2].label, "Floor-B-1");
        assert_eq!(doc.bounds.min_x, -3);
    }
}
