// Package api owns the hub's HTTP API: the HSDS 3.0 read API over the catalog (/, /services,
// /services/{id}, /organizations, /organizations/{id}), its OpenAPI document (/openapi.json), and
// the operational endpoints (/healthz, /readyz, /metrics). Other packages mount their routes with
// Server.Handle; every route gets the request log and the request metrics.
package api
