//! Renderer 2's fonts: each typeface embedded as one subset that every document shares,
//! made and compressed once per process rather than once per document.
//!
//! The shared subset holds the glyphs of the Latin alphabets of Europe's languages, the
//! usual punctuation and the currency signs: the text of most invoices. A document that draws a glyph outside it (a script DejaVu
//! covers beyond those, or a glyph only shaping reaches) gets a subset of its own, the shared
//! glyphs and its extra ones, made for that document alone at about renderer 1's cost.
//!
//! Glyph ids in a subset follow the font's order; widths, the `ToUnicode` map and the
//! descriptor are written from the font's own tables.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Filter, Finish, Name, Rect, Ref, Str};
use rustybuzz::ttf_parser::GlyphId;
use rustybuzz::Face;

/// The characters whose glyphs every document shares: the Latin alphabets of Europe's
/// languages (Latin-1 and Extended-A, with Romanian's ș and ț from Extended-B), dashes,
/// quotes and the ellipsis, the currency signs, № and ™. Every glyph costs every file its
/// bytes: the rest of Extended-B and of the punctuation blocks would add 60 kB to each, Greek
/// and Cyrillic 90 kB more; a document that needs them gets a subset of its own instead.
const SHARED_CHARACTERS: [(char, char); 7] = [
    (' ', '\u{017F}'),        // Basic Latin, Latin-1 Supplement, Latin Extended-A
    ('\u{0218}', '\u{021B}'), // Ș ș Ț ț
    ('\u{2010}', '\u{2027}'), // dashes, quotes, daggers, bullet, ellipsis
    ('\u{2030}', '\u{203A}'), // per mille, primes, angle quotes
    ('\u{20A0}', '\u{20CF}'), // Currency Symbols
    ('\u{2116}', '\u{2116}'), // №
    ('\u{2122}', '\u{2122}'), // ™
];

/// The level the font program is compressed at: zlib's default, as renderer 1's.
const COMPRESSION_LEVEL: u8 = 6;

const SYSTEM_INFO: SystemInfo = SystemInfo {
    registry: Str(b"Adobe"),
    ordering: Str(b"Identity"),
    supplement: 0,
};

/// Where a typeface's objects sit in the file: each typeface has its own fixed references,
/// so its objects can be written once and copied into every file as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FontRefs {
    pub(crate) font: Ref,
    cid_font: Ref,
    descriptor: Ref,
    program: Ref,
    to_unicode: Ref,
}

impl FontRefs {
    /// Five references from `first` on.
    pub(crate) const fn from(first: i32) -> FontRefs {
        FontRefs {
            font: Ref::new(first),
            cid_font: Ref::new(first + 1),
            descriptor: Ref::new(first + 2),
            program: Ref::new(first + 3),
            to_unicode: Ref::new(first + 4),
        }
    }
}

/// A typeface's subset, written out: the objects to copy into a file, and how to address
/// its glyphs there.
#[derive(Clone)]
pub(crate) struct EmbeddedFont {
    pub(crate) objects: Chunk,
    /// The font's glyph id → the id it has in the subset; absent: not in the subset.
    ids: BTreeMap<u16, u16>,
    /// Each subset glyph's advance, in thousandths of an em (the unit of a PDF text
    /// adjustment).
    advances: Vec<f32>,
    /// The font's glyph id → the text it copies as.
    texts: BTreeMap<u16, String>,
}

impl EmbeddedFont {
    /// The subset every document shares.
    pub(crate) fn shared(data: &[u8], face: &Face<'_>, refs: FontRefs) -> EmbeddedFont {
        EmbeddedFont::with_glyphs(data, face, refs, shared_glyphs(face))
    }

    /// This subset with `extra` glyphs added, each copied as the text it stands for.
    pub(crate) fn extended(
        &self,
        data: &[u8],
        face: &Face<'_>,
        refs: FontRefs,
        extra: &BTreeMap<u16, String>,
    ) -> EmbeddedFont {
        let mut glyphs = self.texts.clone();
        for (glyph, text) in extra {
            glyphs.entry(*glyph).or_insert_with(|| text.clone());
        }
        EmbeddedFont::with_glyphs(data, face, refs, glyphs)
    }

    /// `glyph`'s id in the subset, if it is in it.
    pub(crate) fn id_of(&self, glyph: u16) -> Option<u16> {
        self.ids.get(&glyph).copied()
    }

    /// The advance of subset glyph `id`, in thousandths of an em.
    pub(crate) fn advance(&self, id: u16) -> f32 {
        self.advances.get(usize::from(id)).copied().unwrap_or(0.0)
    }

    /// `glyphs`: the font's glyph id → the text it stands for. The .notdef glyph is always
    /// in a subset, as id 0.
    fn with_glyphs(
        data: &[u8],
        face: &Face<'_>,
        refs: FontRefs,
        glyphs: BTreeMap<u16, String>,
    ) -> EmbeddedFont {
        let mut order: Vec<u16> = glyphs.keys().copied().collect();
        order.retain(|glyph| *glyph != 0);
        order.insert(0, 0);
        let ids: BTreeMap<u16, u16> = order
            .iter()
            .enumerate()
            .map(|(id, glyph)| (*glyph, id as u16))
            .collect();
        let remapper = subsetter::GlyphRemapper::new_from_glyphs(&order);
        // The bundled fonts subset; a failure here is a broken build, not input.
        let program = subsetter::subset(data, 0, &remapper).expect("the bundled DejaVu subsets");
        let program = miniz_oxide::deflate::compress_to_vec_zlib(&program, COMPRESSION_LEVEL);

        let per_em = face.units_per_em() as f32;
        let thousandths = |units: f32| units * 1000.0 / per_em;
        let advances: Vec<f32> = order
            .iter()
            .map(|glyph| {
                thousandths(f32::from(
                    face.glyph_hor_advance(GlyphId(*glyph)).unwrap_or(0),
                ))
            })
            .collect();

        let postscript_name = postscript_name(face);
        let name = format!("{}+{postscript_name}", subset_tag(&postscript_name, &order));
        let mut objects = Chunk::new();
        objects
            .type0_font(refs.font)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(refs.cid_font)
            .to_unicode(refs.to_unicode);

        let mut cid = objects.cid_font(refs.cid_font);
        cid.subtype(CidFontType::Type2)
            .base_font(Name(name.as_bytes()))
            .system_info(SYSTEM_INFO)
            .font_descriptor(refs.descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        cid.widths().consecutive(0, advances.iter().copied());
        cid.finish();

        let bbox = face.global_bounding_box();
        let mut flags = FontFlags::SYMBOLIC;
        flags.set(FontFlags::FIXED_PITCH, face.is_monospaced());
        flags.set(FontFlags::ITALIC, face.is_italic());
        let ascent = thousandths(f32::from(face.ascender()));
        objects
            .font_descriptor(refs.descriptor)
            .name(Name(name.as_bytes()))
            .flags(flags)
            .bbox(Rect::new(
                thousandths(f32::from(bbox.x_min)),
                thousandths(f32::from(bbox.y_min)),
                thousandths(f32::from(bbox.x_max)),
                thousandths(f32::from(bbox.y_max)),
            ))
            .italic_angle(face.italic_angle())
            .ascent(ascent)
            .descent(thousandths(f32::from(face.descender())))
            .cap_height(
                face.capital_height()
                    .map_or(ascent, |h| thousandths(f32::from(h))),
            )
            .stem_v(10.0 + 0.244 * (f32::from(face.weight().to_number()) - 50.0))
            .font_file2(refs.program);

        objects
            .stream(refs.program, &program)
            .filter(Filter::FlateDecode);

        let mut to_unicode = UnicodeCmap::new(Name(b"Custom"), SYSTEM_INFO);
        for (glyph, text) in &glyphs {
            if let (Some(id), false) = (ids.get(glyph), text.is_empty()) {
                to_unicode.pair_with_multiple(*id, text.chars());
            }
        }
        let to_unicode = to_unicode.finish();
        objects.cmap(refs.to_unicode, to_unicode.as_slice());

        EmbeddedFont {
            objects,
            ids,
            advances,
            texts: glyphs,
        }
    }
}

/// The font's glyph for each shared character, with the first character that maps to it.
fn shared_glyphs(face: &Face<'_>) -> BTreeMap<u16, String> {
    let mut glyphs = BTreeMap::new();
    for (first, last) in SHARED_CHARACTERS {
        for character in first..=last {
            if let Some(glyph) = face.glyph_index(character) {
                glyphs
                    .entry(glyph.0)
                    .or_insert_with(|| character.to_string());
            }
        }
    }
    glyphs
}

fn postscript_name(face: &Face<'_>) -> String {
    face.names()
        .into_iter()
        .filter(|name| name.name_id == rustybuzz::ttf_parser::name_id::POST_SCRIPT_NAME)
        .find_map(|name| name.to_string())
        .unwrap_or_else(|| "DejaVuSans".to_owned())
}

/// Six capital letters naming a subset, as PDF asks (`ABCDEF+DejaVuSans`): a stable function
/// of the font and its glyphs (FNV-1a), so the same subset is always named alike.
fn subset_tag(font: &str, glyphs: &[u16]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let glyph_bytes = glyphs.iter().flat_map(|glyph| glyph.to_be_bytes());
    for byte in font.bytes().chain(glyph_bytes) {
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6)
        .map(|_| {
            let letter = char::from(b'A' + (hash % 26) as u8);
            hash /= 26;
            letter
        })
        .collect()
}
