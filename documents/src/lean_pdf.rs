//! Renderer 2: laid-out pages written with pdf-writer (the PDF writer under krilla), the
//! fonts embedded as subsets shared between documents (`shared_subset.rs`).
//!
//! Renderer 1 (`pdf.rs`, krilla) subsets and compresses both fonts for every document, and
//! that was most of the time an issue took: a renewal's invoice is rendered when it is
//! issued, so its digest can be recorded. Here the fonts are made once per process and copied
//! into each file as they are; what is left per document is its pages' drawing, written
//! uncompressed (a few kilobytes of glyph ids), and the file's frame. The layout and the
//! shaping are the ones renderer 1 draws, so both editions look alike; their bytes differ.
//!
//! Nothing makes two renders of one document differ: no dates, the file id a digest of the
//! file's own content, the fonts a function of the compiled-in files.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sha2::{Digest, Sha256};

use crate::layout::{Ink, Item, Page, PAGE_HEIGHT, PAGE_WIDTH};
use crate::shared_subset::{EmbeddedFont, FontRefs};
use crate::text::{Fonts, Run, Weight};

const REGULAR_REFS: FontRefs = FontRefs::from(1);
const BOLD_REFS: FontRefs = FontRefs::from(6);
const CATALOG: Ref = Ref::new(11);
const PAGE_TREE: Ref = Ref::new(12);
const INFO: Ref = Ref::new(13);
/// Each page takes two references from here on: the page and its drawing.
const FIRST_PAGE: i32 = 14;

const REGULAR_NAME: Name<'static> = Name(b"F0");
const BOLD_NAME: Name<'static> = Name(b"F1");

pub(crate) fn write(pages: &[Page], fonts: &Fonts, title: &str) -> Vec<u8> {
    let regular = font_for(pages, fonts, Weight::Regular);
    let bold = font_for(pages, fonts, Weight::Bold);

    let drawings: Vec<Vec<u8>> = pages
        .iter()
        .map(|page| draw(page, &regular, &bold))
        .collect();

    let mut pdf = Pdf::with_capacity(
        regular.objects.len()
            + bold.objects.len()
            + drawings.iter().map(Vec::len).sum::<usize>()
            + 4096,
    );
    pdf.set_file_id(file_id(title, &drawings));
    pdf.extend(&regular.objects);
    pdf.extend(&bold.objects);
    pdf.catalog(CATALOG).pages(PAGE_TREE).lang(TextStr("en"));
    pdf.document_info(INFO)
        .title(TextStr(title))
        .creator(TextStr("billstream"));

    let page_refs: Vec<(Ref, Ref)> = (0..pages.len() as i32)
        .map(|n| {
            (
                Ref::new(FIRST_PAGE + 2 * n),
                Ref::new(FIRST_PAGE + 2 * n + 1),
            )
        })
        .collect();
    pdf.pages(PAGE_TREE)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(pages.len() as i32);
    for ((page_ref, drawing_ref), drawing) in page_refs.iter().zip(&drawings) {
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(PAGE_TREE)
            .contents(*drawing_ref);
        page.resources()
            .fonts()
            .pair(REGULAR_NAME, REGULAR_REFS.font)
            .pair(BOLD_NAME, BOLD_REFS.font);
        page.finish();
        pdf.stream(*drawing_ref, drawing);
    }
    pdf.finish()
}

/// A font for `weight` that holds every glyph `pages` draw in it: the shared subset, or, for
/// a document with glyphs beyond it, a subset of its own.
fn font_for(pages: &[Page], fonts: &Fonts, weight: Weight) -> Cow<'static, EmbeddedFont> {
    let shared = shared(fonts, weight);
    let (data, face) = fonts.file(weight);
    let mut extra: BTreeMap<u16, String> = BTreeMap::new();
    for run in runs(pages).filter(|run| run.weight == weight) {
        for (n, glyph) in run.glyphs.iter().enumerate() {
            let id = glyph_id(glyph);
            if shared.id_of(id).is_some() {
                continue;
            }
            let cluster = run.text.get(glyph.text_range.clone()).unwrap_or_default();
            let first_of_cluster = n == 0 || run.glyphs[n - 1].text_range != glyph.text_range;
            let text = copied_as(face, id, cluster, first_of_cluster);
            // A glyph copies as one text in the whole file: the first that says something.
            let entry = extra.entry(id).or_default();
            if entry.is_empty() {
                *entry = text;
            }
        }
    }
    if extra.is_empty() {
        return Cow::Borrowed(shared);
    }
    Cow::Owned(shared.extended(data, face, refs(weight), &extra))
}

/// What glyph `id`, drawn for `cluster`, copies as: the character of the cluster the font
/// draws with it (a mark placed by shaping is its own glyph, and copies as its own mark);
/// otherwise (a ligature) the whole cluster on the cluster's first glyph, and nothing on the
/// others, so a cluster is never copied twice.
fn copied_as(face: &rustybuzz::Face<'_>, id: u16, cluster: &str, first_of_cluster: bool) -> String {
    let own = cluster.chars().find(|character| {
        face.glyph_index(*character)
            .is_some_and(|glyph| glyph.0 == id)
    });
    match own {
        Some(character) => character.to_string(),
        None if first_of_cluster => cluster.to_owned(),
        None => String::new(),
    }
}

/// A shaped glyph's id in the font. The shaper gives a font's own ids, which are 16 bits.
fn glyph_id(glyph: &krilla::text::KrillaGlyph) -> u16 {
    u16::try_from(glyph.glyph_id.to_u32()).expect("a font's glyph ids are 16 bits")
}

/// The shared subset of `weight`, made on first use.
fn shared(fonts: &Fonts, weight: Weight) -> &'static EmbeddedFont {
    static REGULAR: OnceLock<EmbeddedFont> = OnceLock::new();
    static BOLD: OnceLock<EmbeddedFont> = OnceLock::new();
    let cell = match weight {
        Weight::Regular => &REGULAR,
        Weight::Bold => &BOLD,
    };
    cell.get_or_init(|| {
        let (data, face) = fonts.file(weight);
        EmbeddedFont::shared(data, face, refs(weight))
    })
}

fn refs(weight: Weight) -> FontRefs {
    match weight {
        Weight::Regular => REGULAR_REFS,
        Weight::Bold => BOLD_REFS,
    }
}

fn runs(pages: &[Page]) -> impl Iterator<Item = &Run> {
    pages
        .iter()
        .flat_map(|page| &page.items)
        .filter_map(|item| match item {
            Item::Text { run, .. } => Some(run),
            Item::Rule { .. } => None,
        })
}

/// One page's drawing. Layout coordinates run down from the top, PDF's up from the bottom:
/// the page is flipped once, as krilla flips it, so both renderers give poppler the same
/// coordinates and a thin rule falls on the same pixel row.
fn draw(page: &Page, regular: &EmbeddedFont, bold: &EmbeddedFont) -> Vec<u8> {
    let mut content = Content::new();
    content.save_state();
    content.transform([1.0, 0.0, 0.0, -1.0, 0.0, PAGE_HEIGHT]);
    for item in &page.items {
        match item {
            Item::Text {
                x,
                baseline,
                size,
                ink,
                run,
            } => {
                let (font, name) = match run.weight {
                    Weight::Regular => (regular, REGULAR_NAME),
                    Weight::Bold => (bold, BOLD_NAME),
                };
                let [r, g, b] = color(*ink);
                content.set_fill_rgb(r, g, b);
                content.begin_text();
                content.set_font(name, *size);
                show(&mut content, font, run, *x, *baseline, *size);
                content.end_text();
            }
            Item::Rule {
                x,
                y,
                width,
                thickness,
                ink,
            } => {
                let [r, g, b] = color(*ink);
                content.set_fill_rgb(r, g, b);
                let (top, bottom) = (y - thickness / 2.0, y + thickness / 2.0);
                content.move_to(*x, top);
                content.line_to(x + width, top);
                content.line_to(x + width, bottom);
                content.line_to(*x, bottom);
                content.close_path();
                content.fill_nonzero();
            }
        }
    }
    content.restore_state();
    content.finish().into_vec()
}

/// Draws `run`'s glyphs from `x` on `baseline` as they were shaped: where a glyph's shaped
/// advance differs from the font's (kerning), the difference is written as an adjustment; a
/// glyph shaped off the baseline (a mark placed on its letter) is placed on its own. The text
/// matrix flips the flipped page back, so glyphs stand upright.
fn show(content: &mut Content, font: &EmbeddedFont, run: &Run, x: f32, baseline: f32, size: f32) {
    let at = |x: f32, y: f32| [1.0, 0.0, 0.0, -1.0, x, y];
    let mut pen = 0.0;
    let mut pending: Vec<(Vec<u8>, f32)> = Vec::new();
    content.set_text_matrix(at(x, baseline));
    for glyph in &run.glyphs {
        let id = font.id_of(glyph_id(glyph)).unwrap_or(0);
        if glyph.x_offset != 0.0 || glyph.y_offset != 0.0 {
            flush(content, &mut pending);
            let at_x = x + (pen + glyph.x_offset) * size;
            content.set_text_matrix(at(at_x, baseline - glyph.y_offset * size));
            content.show(Str(&id.to_be_bytes()));
            pen += glyph.x_advance;
            content.set_text_matrix(at(x + pen * size, baseline));
            continue;
        }
        // Differences below a thousandth of a thousandth of an em are float noise, not kerning.
        let adjustment = match font.advance(id) - glyph.x_advance * 1000.0 {
            tiny if tiny.abs() <= 0.001 => 0.0,
            adjustment => adjustment,
        };
        match pending.last_mut() {
            Some((ids, after)) if *after == 0.0 => {
                ids.extend(id.to_be_bytes());
                *after = adjustment;
            }
            _ => pending.push((id.to_be_bytes().to_vec(), adjustment)),
        }
        pen += glyph.x_advance;
    }
    flush(content, &mut pending);
}

/// Shows the glyphs gathered so far, each group followed by its adjustment.
fn flush(content: &mut Content, pending: &mut Vec<(Vec<u8>, f32)>) {
    if pending.is_empty() {
        return;
    }
    let mut positioned = content.show_positioned();
    let mut items = positioned.items();
    for (ids, after) in pending.drain(..) {
        items.show(Str(&ids));
        if after != 0.0 {
            items.adjust(after);
        }
    }
}

fn color(ink: Ink) -> [f32; 3] {
    ink.rgb().map(|channel| f32::from(channel) / 255.0)
}

/// The file's id: a digest of what it shows, so the same document always gets the same id
/// and two documents two.
fn file_id(title: &str, drawings: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let mut hasher = Sha256::new();
    hasher.update(title.as_bytes());
    for drawing in drawings {
        hasher.update((drawing.len() as u64).to_be_bytes());
        hasher.update(drawing);
    }
    let id = hasher.finalize()[..16].to_vec();
    (id.clone(), id)
}
