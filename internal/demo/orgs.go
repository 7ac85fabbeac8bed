package demo

import "math/rand/v2"

// DepartmentOrganization is an institution of the department file as the demo world knows it.
type DepartmentOrganization struct {
	TruthID string // the organization's id in the demo world (OrganizationTruthID)
	ID      string // its «Код учреждения» in the department file: its local id at that source
	Name    string
	INN     string
	OGRN    string
}

// OrganizationTruthID is the ground-truth id of an institution of the demo world, from its INN.
// Every generator that writes one, in whatever spelling (the department file, the HSDS feed, the
// grant lists), uses it.
func OrganizationTruthID(inn string) string { return "organization:" + inn }

// DepartmentOrganizations returns the institutions behind WriteDepartmentCSV with the same
// options, in the order they were created. It draws from its own generator, so the department
// file's bytes do not depend on whether it was called.
func DepartmentOrganizations(opts Options) ([]DepartmentOrganization, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	orgs := departmentOrgs(opts)
	out := make([]DepartmentOrganization, len(orgs))
	for i, og := range orgs {
		out[i] = DepartmentOrganization{TruthID: OrganizationTruthID(og.inn), ID: og.id, Name: og.name, INN: og.inn, OGRN: og.ogrn}
	}
	return out, nil
}

// DepartmentTruth returns one ground-truth row per institution of the department file: the
// department source's records are services, so the organization's record id there is its «Код
// учреждения» (the organization's local id in the record document).
func DepartmentTruth(source string, opts Options) ([]TruthRow, error) {
	orgs, err := DepartmentOrganizations(opts)
	if err != nil {
		return nil, err
	}
	out := make([]TruthRow, len(orgs))
	for i, o := range orgs {
		out[i] = TruthRow{EntityType: "organization", Source: source, ExternalID: o.ID, TruthID: o.TruthID}
	}
	return out, nil
}

// departmentOrgs rebuilds the institutions exactly as generate does: buildOrgs is the first draw
// of the department's stream.
func departmentOrgs(o Options) []*org {
	return buildOrgs(gen{rand.NewPCG(uint64(o.Seed), 0x50c1a1)}, o.Institutions)
}
