// Package audit owns the audit log: the table audit_log, an append-only hash chain of every
// lookup, eligibility query and refused request the hub answered. Each row carries the hash of the
// row before it, so that changing, removing or inserting a row anywhere breaks the chain at that
// row, and Verify names it. The hub's role cannot change or delete rows: a trigger raises on
// UPDATE, DELETE and TRUNCATE, and the migration revokes those privileges where the role allows.
//
// Why both: REVOKE binds every role but the table's owner and superusers, and the hub's role is
// usually the owner (it runs the migrations), so the trigger is what holds in practice. Only a role
// that may drop the trigger (the owner, a superuser) can get around it, and what it then changes
// the chain reveals. A deployment that wants the REVOKE to bind too runs the migrations as another
// role than the one serving requests.
//
// Appends are serialized by locking the head row (audit_head, the last sequence number and hash)
// in the appending transaction, so the chain has no forks whatever the number of replicas. Within
// a process, appends that arrive together share that transaction (Log's group commit): each row is
// still committed before its Append returns, and a lookup's answer leaves only after its row.
package audit
