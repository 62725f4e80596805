//! `signet`: the command-line front end. Argument parsing, file I/O and exit codes; no crypto here.

fn main() {}
