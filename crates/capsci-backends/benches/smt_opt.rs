//! SMT and HiGHS benchmark through capsci (being written).

fn main() {}
