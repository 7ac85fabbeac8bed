// Package quality owns the data-quality figures of each source: what the validate stage read,
// passed and rejected (by the field of each reason) and normalized, kept in PostgreSQL as the
// stage goes (Store.Add, the stage's Tally) so they survive restarts, and the share of the
// source's catalog records with a phone, an address, opening hours and coordinates (from
// catalog.Store.Coverage). It serves them on GET /v1/quality and GET /v1/quality/{source} and as
// the gauge socialhub_catalog_share{source,field}, refreshed by Run.
package quality
