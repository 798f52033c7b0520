//! A small page layout over pdf-writer: lines of text at fixed columns, paginated on A4, in
//! the standard Helvetica fonts (no font file to embed; text stays real, searchable text).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Where a piece of text sits on its row.
#[derive(Debug, Clone, Copy)]
pub enum Align {
    /// Starts at x.
    Left(f32),
    /// Ends at x.
    Right(f32),
}

/// One piece of text on a row.
#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub align: Align,
    pub bold: bool,
    pub size: f32,
}

impl Cell {
    pub fn left(x: f32, text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            align: Align::Left(x),
            bold: false,
            size: 10.0,
        }
    }
    pub fn right(x: f32, text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            align: Align::Right(x),
            bold: false,
            size: 10.0,
        }
    }
    pub fn bold(mut self) -> Cell {
        self.bold = true;
        self
    }
    pub fn size(mut self, size: f32) -> Cell {
        self.size = size;
        self
    }
}

/// Rows of text, top to bottom; a rule is a horizontal line.
pub enum Row {
    Text(Vec<Cell>),
    Rule,
    Gap(f32),
}

/// Encodes text in WinAnsiEncoding: Latin-1 letters keep their accents, anything else that the
/// standard fonts cannot show becomes '?'. Control characters never reach here.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c as u32 {
            0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
            0x20ac => 0x80, // euro sign
            _ => b'?',
        })
        .collect()
}

/// Helvetica advance widths (per 1000 units) of the characters right-aligned columns use.
fn width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| match c {
            '0'..='9' => 556,
            '.' | ',' | ' ' => 278,
            '-' => 333,
            '%' => 889,
            'A'..='Z' => 667,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// Lays rows out on as many pages as they need and answers the PDF.
pub fn render(title: &str, rows: &[Row]) -> Vec<u8> {
    let mut pages: Vec<Content> = Vec::new();
    let mut content = Content::new();
    let mut y = PAGE_HEIGHT - MARGIN;
    for row in rows {
        let height = match row {
            Row::Text(cells) => cells.iter().map(|c| c.size).fold(10.0, f32::max) * 1.4,
            Row::Rule => 6.0,
            Row::Gap(h) => *h,
        };
        if y - height < MARGIN {
            pages.push(std::mem::replace(&mut content, Content::new()));
            y = PAGE_HEIGHT - MARGIN;
        }
        y -= height;
        match row {
            Row::Text(cells) => {
                for cell in cells {
                    let x = match cell.align {
                        Align::Left(x) => x,
                        Align::Right(x) => x - width(&cell.text, cell.size),
                    };
                    content.begin_text();
                    content.set_font(if cell.bold { BOLD } else { REGULAR }, cell.size);
                    content.next_line(x, y);
                    content.show(Str(&win_ansi(&cell.text)));
                    content.end_text();
                }
            }
            Row::Rule => {
                content.set_line_width(0.5);
                content.move_to(MARGIN, y + 3.0);
                content.line_to(PAGE_WIDTH - MARGIN, y + 3.0);
                content.stroke();
            }
            Row::Gap(_) => {}
        }
    }
    pages.push(content);

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 10;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    pdf.document_info(info)
        .title(TextStr(title))
        .creator(TextStr("Consign"));
    for (i, content) in pages.into_iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(REGULAR, regular);
        fonts.pair(BOLD, bold);
        fonts.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.finish()
}

/// The left margin, for callers placing columns.
pub const LEFT: f32 = MARGIN;
/// The right edge of the text area.
pub const RIGHT: f32 = PAGE_WIDTH - MARGIN;
