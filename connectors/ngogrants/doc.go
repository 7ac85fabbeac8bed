// Package ngogrants is the connector kind for the lists grant operators publish — the Фонд
// президентских грантов, the city's own grant programmes: one row per application that won, with
// the organization's INN and OGRN, the project, the amount and the dates. Lists come as CSV (UTF-8
// or Windows-1251, with or without a header) or XLSX, from a file or an HTTP(S) URL.
//
// Each row becomes one record: an HSDS organization (entity "organization", id "inn-<INN>") with
// its INN/OGRN identifiers and a funding array holding that row's grant; the record's external id
// is the application number. Rows whose INN or OGRN fails its control digit, whose amount or dates
// cannot be read exactly, or that lack an application number are rejected at the source with
// their reasons, never guessed at. A list is a full list: the source is a connectors.Snapshotter
// whose snapshot is the file's SHA-256, so applications that vanish from the list become deletes.
package ngogrants
