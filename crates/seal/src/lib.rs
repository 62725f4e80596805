//! The Sealed-Secrets envelope, scopes, sealing certificates and keys, SealedSecret <-> Secret conversion.
