//! The workbench's desktop app (`gui`), as a library so its views can be driven by tests; the `workbench`
//! binary adds the command line.

pub mod gui;
