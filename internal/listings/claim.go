package listings

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"socialhub/internal/audit"
	"socialhub/internal/catalog"
	"socialhub/internal/clients"
	"socialhub/internal/jsonhttp"
)

type claimRequest struct {
	ClientID string `json:"client_id"`
}

// organizationDoc is what a claim reads of a catalog organization.
type organizationDoc struct {
	ID                      string `json:"id"`
	Name                    string `json:"name"`
	OrganizationIdentifiers []struct {
		Scheme     string `json:"identifier_scheme"`
		Identifier string `json:"identifier"`
	} `json:"organization_identifiers"`
}

// claim binds an NGO client to a catalog organization: the NGO's listings then carry its INN and
// OGRN, and entity resolution merges them into it.
func (a *API) claim(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req claimRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || strings.TrimSpace(req.ClientID) == "" {
		writeError(w, http.StatusBadRequest, "the body names the NGO client", []clients.FieldError{{Field: "client_id", Message: "required"}})
		return
	}
	raw, err := a.opts.Catalog.GetOrganization(ctx, r.PathValue("id"))
	if errors.Is(err, catalog.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no organization "+r.PathValue("id"), nil)
		return
	}
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	var doc organizationDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		a.unavailable(w, r, err)
		return
	}
	org := clients.Organization{ID: doc.ID, Name: doc.Name}
	for _, it := range doc.OrganizationIdentifiers {
		switch strings.ToUpper(it.Scheme) {
		case "INN":
			org.INN = cmpOr(org.INN, digits(it.Identifier))
		case "OGRN", "OGRNIP":
			org.OGRN = cmpOr(org.OGRN, digits(it.Identifier))
		}
	}
	if org.INN == "" && org.OGRN == "" {
		writeError(w, http.StatusUnprocessableEntity, "the organization has no INN or OGRN to merge the NGO's listings by", nil)
		return
	}
	c, err := a.opts.Clients.Bind(ctx, req.ClientID, org)
	switch {
	case errors.Is(err, clients.ErrNotFound):
		writeError(w, http.StatusNotFound, "no client "+req.ClientID, []clients.FieldError{{Field: "client_id", Message: "unknown"}})
		return
	case errors.Is(err, clients.ErrInvalidClient):
		writeError(w, http.StatusUnprocessableEntity, err.Error(), []clients.FieldError{{Field: "client_id", Message: "not an ngo client"}})
		return
	case err != nil:
		a.unavailable(w, r, err)
		return
	}
	if a.opts.Audit != nil {
		admin, _ := clients.FromContext(ctx)
		detail, _ := json.Marshal(map[string]string{"organization_id": org.ID, "client_id": c.ID, "inn": org.INN, "ogrn": org.OGRN})
		if _, err := a.opts.Audit.Append(ctx, audit.Entry{Action: ActionClaim, Outcome: audit.OutcomeAnswered, Status: http.StatusOK,
			ClientID: admin.ID, ClientName: admin.Name, ClientKind: string(admin.Kind), Detail: detail}); err != nil {
			a.log.ErrorContext(ctx, "a claim could not be audited", "error", err)
		}
	}
	jsonhttp.Write(w, http.StatusOK, c)
}
