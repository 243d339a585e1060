//! Which renderer drew a document. A document's digest is recorded when it is issued and
//! checked on every later render, so a renderer, once it has drawn documents, must go on
//! drawing them byte for byte. A change that moves a byte is a new renderer, recorded with
//! the documents it draws; the old one stays for the documents it drew.

/// A renderer, by the number a document's issue records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Renderer {
    /// 1: krilla, each document with subsets of the fonts made for it. Documents whose issue
    /// records no renderer were drawn by this one.
    KrillaSubsets,
    /// 2: pdf-writer, the fonts embedded as subsets shared by every document (made once per
    /// process), the drawing uncompressed. About ten times faster than 1, at about three times
    /// the file size.
    SharedSubsets,
}

impl Renderer {
    /// What documents issued now are drawn with.
    pub const CURRENT: Renderer = Renderer::SharedSubsets;

    /// The number recorded with a document.
    pub fn number(self) -> u16 {
        match self {
            Renderer::KrillaSubsets => 1,
            Renderer::SharedSubsets => 2,
        }
    }

    /// The renderer a document records, by its number; none for a number this build does not
    /// know (a document issued by a newer build).
    pub fn numbered(number: u16) -> Option<Renderer> {
        match number {
            1 => Some(Renderer::KrillaSubsets),
            2 => Some(Renderer::SharedSubsets),
            _ => None,
        }
    }
}
