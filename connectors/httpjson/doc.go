// Package httpjson is the `httpjson` kind of source: any JSON API over HTTP that lists services,
// mapped field by field to the hub's record document with JSON pointers (RFC 6901, evaluated by
// github.com/go-openapi/jsonpointer). It follows the API's paging — page numbers, offset and limit,
// a cursor taken from the page, or RFC 8288 Link headers — and stops on an empty page or when no
// next page is named. Each run that starts over reads the whole list first and names it by the hash
// of its items: an unchanged list reads nothing, and a full list is a snapshot, so vanished items
// become deletes.
package httpjson
