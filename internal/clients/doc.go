// Package clients owns the API clients: the table api_clients (departments, NGOs, apps, the
// contact centre's operators, administrators), their opaque bearer tokens, the scopes each may use
// and the purposes each may declare, and Guard, the HTTP middleware that authenticates a request,
// applies the client's rate limit, checks scope and purpose, and writes every refusal to the
// audit log.
//
// A token is 32 random bytes, shown once when the client is created and stored only as its
// SHA-256: a token has the entropy of a key, so a slow password hash would add nothing but
// latency, and a stolen table yields no usable token.
package clients
