package schemas_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/schemas"
)

func validResident(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/resident/family.json")
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

func TestValidateResident(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	address := func(d map[string]any) map[string]any { return d["address"].(map[string]any) }
	household := func(d map[string]any) map[string]any { return d["household"].(map[string]any) }
	for _, tc := range []struct {
		name   string
		mutate func(d map[string]any)
		field  string // "" when the document must be valid
	}{
		{"valid", func(map[string]any) {}, ""},
		{"no district or postal code", func(d map[string]any) {
			delete(address(d), "district")
			delete(address(d), "postal_code")
		}, ""},
		{"disability group I", func(d map[string]any) { d["disability_group"] = "I" }, ""},
		{"id missing", func(d map[string]any) { delete(d, "id") }, "id"},
		{"id is a raw СНИЛС", func(d map[string]any) { d["id"] = "112-233-445 95" }, "id"},
		{"id upper-case hex", func(d map[string]any) {
			d["id"] = "C88FFD2E9F485568868419BEE4F3E33FC765CAD7530A16BCFFF857A6F181BDE0"
		}, "id"},
		{"extra property (a name)", func(d map[string]any) { d["last_name"] = "Иванов" }, "(root)"},
		{"extra address property", func(d map[string]any) { address(d)["flat_owner"] = "Иванов" }, "address"},
		{"address missing", func(d map[string]any) { delete(d, "address") }, "address"},
		{"address_1 empty", func(d map[string]any) { address(d)["address_1"] = "" }, "address.address_1"},
		{"okrug unknown", func(d map[string]any) { address(d)["okrug"] = "Юго-Восточный" }, "address.okrug"},
		{"okrug missing", func(d map[string]any) { delete(address(d), "okrug") }, "address.okrug"},
		{"postal code short", func(d map[string]any) { address(d)["postal_code"] = "10945" }, "address.postal_code"},
		{"birth date Russian style", func(d map[string]any) { d["birth_date"] = "02.09.1984" }, "birth_date"},
		{"birth date impossible", func(d map[string]any) { d["birth_date"] = "1984-02-31" }, "birth_date"},
		{"birth date with time", func(d map[string]any) { d["birth_date"] = "1984-09-02T00:00:00Z" }, "birth_date"},
		{"registered_since missing", func(d map[string]any) { delete(d, "registered_since") }, "registered_since"},
		{"household members zero", func(d map[string]any) { household(d)["members"] = 0 }, "household.members"},
		{"children negative", func(d map[string]any) { household(d)["children_under_18"] = -1 }, "household.children_under_18"},
		{"children fractional", func(d map[string]any) { household(d)["children_with_disabilities"] = 0.5 }, "household.children_with_disabilities"},
		{"household incomplete", func(d map[string]any) { delete(household(d), "children_with_disabilities") }, "household.children_with_disabilities"},
		{"disability group arabic", func(d map[string]any) { d["disability_group"] = "2" }, "disability_group"},
		{"disability group missing", func(d map[string]any) { delete(d, "disability_group") }, "disability_group"},
		{"pensioner as text", func(d map[string]any) { d["pensioner"] = "да" }, "pensioner"},
		{"low_income missing", func(d map[string]any) { delete(d, "low_income") }, "low_income"},
		{"large_family null", func(d map[string]any) { d["large_family"] = nil }, "large_family"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := validResident(t)
			tc.mutate(d)
			b, err := json.Marshal(d)
			require.NoError(t, err)
			got, err := v.Validate(schemas.EntityResident, b)
			require.NoError(t, err)
			if tc.field == "" {
				require.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "violations: %+v", got)
			require.Equal(t, tc.field, got[0].Field)
			require.NotEmpty(t, got[0].Message)
		})
	}
}
