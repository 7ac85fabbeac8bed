package demo

import (
	"socialhub/connectors/servicedoc"
)

// DepartmentPoint is one service point of the department CSV as the csv kind reads it: the ids
// its records carry for the organization and the location, and the point's details. Other demo
// sources that describe the same organizations use it for their ground truth.
type DepartmentPoint struct {
	OrganizationID   string // «Код учреждения»
	OrganizationName string
	INN, OGRN        string
	LocationID       string // the location id the csv kind derives from the organization and address
	PointName        string
	Address          string
	District, Okrug  string
	PostalCode       string
	Phone            string
	Latitude         float64
	Longitude        float64
}

// DepartmentPoints returns the service points that valid rows of the department CSV written with
// opts hold, in file order without repeats. It regenerates the file's world from the same seed and
// leaves the file's bytes as they are.
func DepartmentPoints(opts Options) ([]DepartmentPoint, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	rows, man := generate(opts)
	broken := make(map[string]bool, len(man.Broken))
	for _, b := range man.Broken {
		broken[b.ID] = true
	}
	points := map[string]point{}
	for _, og := range departmentOrgs(opts) {
		for _, p := range og.points {
			points[og.id+"\x00"+p.address] = p
		}
	}
	seen := map[string]bool{}
	var out []DepartmentPoint
	for _, r := range rows {
		if broken[r[colID]] {
			continue
		}
		f := servicedoc.Fields{OrganizationID: r[colOrgID], OrganizationName: r[colOrgName]}
		locID := servicedoc.LocationID(servicedoc.OrganizationID(f), r[colAddress])
		if seen[locID] {
			continue
		}
		seen[locID] = true
		p := points[r[colOrgID]+"\x00"+r[colAddress]]
		out = append(out, DepartmentPoint{
			OrganizationID: r[colOrgID], OrganizationName: r[colOrgName], INN: r[colINN], OGRN: r[colOGRN],
			LocationID: locID, PointName: r[colPoint], Address: r[colAddress], District: r[colDistrict],
			Okrug: r[colOkrug], PostalCode: r[colPostalCode], Phone: r[colPhone], Latitude: p.lat, Longitude: p.lon,
		})
	}
	return out, nil
}
