"""The oshirase SDK for program plugins written in Python: the same legal date readings as
the Rust SDK (`dates`)."""
