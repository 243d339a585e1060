//! Laid-out pages drawn with krilla. Everything that could make two renders of one document
//! differ is left out: no creation date, no random or time-based document id (krilla derives
//! the file id from a hash of the content), no XMP packet, fonts from the binary only.

use krilla::color::rgb;
use krilla::error::KrillaError;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::{Document, SerializeSettings};

use crate::layout::{Ink, Item, Page, PAGE_HEIGHT, PAGE_WIDTH};
use crate::text::Fonts;

pub(crate) fn write(pages: &[Page], fonts: &Fonts, title: String) -> Result<Vec<u8>, KrillaError> {
    let settings = SerializeSettings {
        // The document information dictionary carries the title; an XMP packet would only
        // repeat it.
        xmp_metadata: false,
        // No structure tags are written, so none are announced.
        enable_tagging: false,
        ..SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    document.set_metadata(
        Metadata::new()
            .title(title)
            .creator("billstream".to_owned())
            .language("en".to_owned()),
    );
    let size = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).expect("A4 is a valid page size");
    for page in pages {
        let mut pdf_page = document.start_page_with(size.clone());
        let mut surface = pdf_page.surface();
        for item in &page.items {
            draw(&mut surface, fonts, item);
        }
        surface.finish();
        pdf_page.finish();
    }
    document.finish()
}

fn draw(surface: &mut Surface<'_>, fonts: &Fonts, item: &Item) {
    match item {
        Item::Text {
            x,
            baseline,
            size,
            ink,
            run,
        } => {
            surface.set_fill(Some(fill(*ink)));
            surface.draw_glyphs(
                Point::from_xy(*x, *baseline),
                &run.glyphs,
                fonts.pdf_font(run.weight),
                &run.text,
                *size,
                false,
            );
        }
        Item::Rule {
            x,
            y,
            width,
            thickness,
            ink,
        } => {
            let Some(rect) = Rect::from_xywh(*x, y - thickness / 2.0, *width, *thickness) else {
                return;
            };
            let mut path = PathBuilder::new();
            path.push_rect(rect);
            if let Some(path) = path.finish() {
                surface.set_fill(Some(fill(*ink)));
                surface.draw_path(&path);
            }
        }
    }
}

fn fill(ink: Ink) -> Fill {
    let [r, g, b] = ink.rgb();
    let color = rgb::Color::new(r, g, b);
    Fill {
        paint: color.into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}
