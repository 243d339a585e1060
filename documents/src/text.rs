//! The fonts, compiled into the binary, and the little typesetting an invoice needs: shape a
//! run once, measure it, wrap a description to its column.
//!
//! A run is shaped here with rustybuzz (the shaper krilla itself uses) and the same glyphs are
//! handed to krilla, so what was measured is exactly what is drawn: right-aligned amounts line
//! up and a wrapped line never overflows its column.

use std::sync::{Arc, Mutex};

use krilla::text::{Font, GlyphId, KrillaGlyph};
use rustybuzz::{Direction, Face, Language, Script, ShapePlan, UnicodeBuffer};

/// DejaVu Sans covers Latin (with Ł, İ, Æ, ø…), Greek and Cyrillic, and the currency signs.
pub(crate) struct Fonts {
    regular: Typeface,
    bold: Typeface,
}

struct Typeface {
    /// The font file as compiled in.
    data: &'static [u8],
    pdf: Font,
    shaper: Face<'static>,
    units_per_em: f32,
    /// The shape plans made so far, one per direction, script and language: making a plan was
    /// 40% of shaping, and an invoice shapes a few dozen runs of two or three kinds.
    plans: Mutex<Vec<(PlanKey, Arc<ShapePlan>)>>,
}

type PlanKey = (Direction, Script, Option<Language>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

/// A run of text, shaped: its glyphs are positioned in em units, at no size yet.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) text: String,
    pub(crate) glyphs: Vec<KrillaGlyph>,
    pub(crate) weight: Weight,
    width_em: f32,
}

impl Run {
    pub(crate) fn width(&self, size: f32) -> f32 {
        self.width_em * size
    }
}

impl Fonts {
    pub(crate) fn new() -> Fonts {
        Fonts {
            regular: Typeface::new(dejavu::sans::regular()),
            bold: Typeface::new(dejavu::sans::bold()),
        }
    }

    pub(crate) fn pdf_font(&self, weight: Weight) -> Font {
        self.typeface(weight).pdf.clone()
    }

    /// The font file and its parsed tables, for a writer that embeds the font itself.
    pub(crate) fn file(&self, weight: Weight) -> (&'static [u8], &Face<'static>) {
        let typeface = self.typeface(weight);
        (typeface.data, &typeface.shaper)
    }

    fn typeface(&self, weight: Weight) -> &Typeface {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    pub(crate) fn shape(&self, text: &str, weight: Weight) -> Run {
        let typeface = self.typeface(weight);
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let plan = typeface.plan((buffer.direction(), buffer.script(), buffer.language()));
        let output = rustybuzz::shape_with_plan(&typeface.shaper, &plan, buffer);

        // A glyph stands for the text from its cluster up to the next cluster, whichever way
        // the run goes; krilla writes that text next to it so the PDF's text can be copied.
        let mut cluster_starts: Vec<usize> = output
            .glyph_infos()
            .iter()
            .map(|info| info.cluster as usize)
            .collect();
        cluster_starts.sort_unstable();
        cluster_starts.dedup();
        let cluster_end = |start: usize| {
            cluster_starts
                .iter()
                .copied()
                .find(|next| *next > start)
                .unwrap_or(text.len())
        };

        let em = typeface.units_per_em;
        let mut width_em = 0.0;
        let glyphs = output
            .glyph_infos()
            .iter()
            .zip(output.glyph_positions())
            .map(|(info, position)| {
                let start = info.cluster as usize;
                width_em += position.x_advance as f32 / em;
                KrillaGlyph::new(
                    GlyphId::new(info.glyph_id),
                    position.x_advance as f32 / em,
                    position.x_offset as f32 / em,
                    position.y_offset as f32 / em,
                    position.y_advance as f32 / em,
                    start..cluster_end(start),
                    None,
                )
            })
            .collect();
        Run {
            text: text.to_owned(),
            glyphs,
            weight,
            width_em,
        }
    }

    pub(crate) fn width(&self, text: &str, weight: Weight, size: f32) -> f32 {
        self.shape(text, weight).width(size)
    }

    /// `text` broken into lines no wider than `max_width`, words kept whole where they fit,
    /// a word longer than a line cut between characters. Past `max_lines` the last line ends
    /// with "…": a description is bounded, and a row must fit on a page.
    pub(crate) fn wrap(
        &self,
        text: &str,
        weight: Weight,
        size: f32,
        max_width: f32,
        max_lines: usize,
    ) -> Vec<String> {
        let space = self.width(" ", weight, size);
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        let mut line_width = 0.0;
        for word in text.split_whitespace() {
            let word_width = self.width(word, weight, size);
            if !line.is_empty() && line_width + space + word_width <= max_width {
                line.push(' ');
                line.push_str(word);
                line_width += space + word_width;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if word_width <= max_width {
                line.push_str(word);
                line_width = word_width;
            } else {
                let mut pieces = self.split_word(word, weight, size, max_width);
                let last = pieces.pop().unwrap_or_default();
                lines.extend(pieces);
                line_width = self.width(&last, weight, size);
                line = last;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        if lines.len() > max_lines {
            lines.truncate(max_lines);
            if let Some(last) = lines.last_mut() {
                *last = self.with_ellipsis(last, weight, size, max_width);
            }
        }
        lines
    }

    /// A word wider than a line, cut into pieces that each fit (at least one character each).
    fn split_word(&self, word: &str, weight: Weight, size: f32, max_width: f32) -> Vec<String> {
        let mut pieces = Vec::new();
        let mut piece = String::new();
        for character in word.chars() {
            piece.push(character);
            if piece.chars().count() > 1 && self.width(&piece, weight, size) > max_width {
                piece.pop();
                pieces.push(std::mem::take(&mut piece));
                piece.push(character);
            }
        }
        pieces.push(piece);
        pieces
    }

    fn with_ellipsis(&self, line: &str, weight: Weight, size: f32, max_width: f32) -> String {
        let mut kept: String = line.to_owned();
        loop {
            let candidate = format!("{}…", kept.trim_end());
            if kept.is_empty() || self.width(&candidate, weight, size) <= max_width {
                return candidate;
            }
            kept.pop();
        }
    }
}

impl Typeface {
    /// The plan `rustybuzz::shape` would make for a buffer of these properties (the same
    /// plan, so the same glyphs): made once, then reused.
    fn plan(&self, key: PlanKey) -> Arc<ShapePlan> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, plan)) = plans.iter().find(|(made_for, _)| made_for == &key) {
            return plan.clone();
        }
        let (direction, script, language) = key.clone();
        // A buffer whose script could not be guessed has none; `script()` shows it as unknown.
        let script = (script != rustybuzz::script::UNKNOWN).then_some(script);
        let plan = Arc::new(ShapePlan::new(
            &self.shaper,
            direction,
            script,
            language.as_ref(),
            &[],
        ));
        plans.push((key, plan.clone()));
        plan
    }

    fn new(data: &'static [u8]) -> Typeface {
        // Both fonts are compiled in and parse; a failure here is a broken build, not input.
        let pdf = Font::new(data.into(), 0).expect("the bundled DejaVu font parses for krilla");
        let shaper = Face::from_slice(data, 0).expect("the bundled DejaVu font parses for shaping");
        let units_per_em = shaper.units_per_em() as f32;
        Typeface {
            data,
            pdf,
            shaper,
            units_per_em,
            plans: Mutex::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wider_text_measures_wider() {
        let fonts = Fonts::new();
        let narrow = fonts.width("iii", Weight::Regular, 10.0);
        let wide = fonts.width("WWW", Weight::Regular, 10.0);
        assert!(narrow > 0.0 && wide > narrow * 2.0, "{narrow} {wide}");
        assert!(
            fonts.width("Total", Weight::Bold, 10.0) > fonts.width("Total", Weight::Regular, 10.0)
        );
    }

    #[test]
    fn every_glyph_of_a_non_ascii_name_maps_back_to_its_text() {
        let fonts = Fonts::new();
        let run = fonts.shape("Zoë Łukasiewicz", Weight::Regular);
        let covered: String = run
            .glyphs
            .iter()
            .map(|glyph| &run.text[glyph.text_range.clone()])
            .collect();
        assert_eq!(covered, "Zoë Łukasiewicz");
        assert!(
            run.glyphs.iter().all(|glyph| glyph.glyph_id.to_u32() != 0),
            "no missing glyph"
        );
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let fonts = Fonts::new();
        let text = "Professional services for the migration of the billing platform, \
                    including data export, reconciliation and two training sessions";
        let lines = fonts.wrap(text, Weight::Regular, 10.0, 150.0, 20);
        assert!(lines.len() > 2, "{lines:?}");
        for line in &lines {
            assert!(fonts.width(line, Weight::Regular, 10.0) <= 150.0, "{line}");
        }
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }

    #[test]
    fn a_word_longer_than_the_column_is_cut_between_characters() {
        let fonts = Fonts::new();
        let word = "x".repeat(200);
        let lines = fonts.wrap(&word, Weight::Regular, 10.0, 100.0, 20);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), word);
    }

    #[test]
    fn past_the_line_limit_the_last_line_ends_with_an_ellipsis() {
        let fonts = Fonts::new();
        let text = "word ".repeat(300);
        let lines = fonts.wrap(&text, Weight::Regular, 10.0, 100.0, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'), "{lines:?}");
        assert!(fonts.width(&lines[2], Weight::Regular, 10.0) <= 100.0);
    }

    #[test]
    fn blank_text_wraps_to_no_line() {
        let fonts = Fonts::new();
        assert!(fonts
            .wrap("  \n ", Weight::Regular, 10.0, 100.0, 3)
            .is_empty());
    }
}
