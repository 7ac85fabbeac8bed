// Package rawjson reads and writes JSON bytes the way encoding/json does, byte for byte, without
// reflection and with few allocations: it validates and skips values, compacts, writes the
// canonical form (object keys sorted, no insignificant whitespace, numbers as written) of bytes or
// of decoded documents, and decodes documents into any with json.Number numbers. The envelope
// codec, content hashes and the validate stage run on it for every record.
//
// It answers only "valid" or "not": a caller that must say what is wrong with bad input asks
// encoding/json again, so the reasons it gives stay the ones encoding/json gives.
package rawjson
