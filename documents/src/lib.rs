//! Invoice PDFs. A document goes in, as plain values the caller has already read and formatted
//! the names of; a PDF comes out. No I/O: the fonts (DejaVu Sans and Sans Bold) are compiled
//! in and embedded as subsets, nothing is read from the system or the network.

mod money;

pub use money::format_money;
