// Package servicedoc owns the hub's record document as the connector kinds write it: an HSDS 3.0
// service with its organization and its service_at_locations nested, the shape the profile in
// schemas/service.json validates. Kinds that read flat rows (csv, httpjson) fill a Fields value and
// call Build; kinds that read HSDS itself (hsds) fill the document types directly. Struct order fixes
// the JSON key order, so the same input always gives the same bytes.
package servicedoc
