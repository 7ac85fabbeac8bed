package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// debianRoot is where Debian and Ubuntu install each PostgreSQL major version, off PATH.
const debianRoot = "/usr/lib/postgresql"

// FindBinary returns the path of a PostgreSQL program: from PATH first, then from
// /usr/lib/postgresql/<highest version>/bin. Symbolic links are resolved so that sibling programs
// (pg_ctl starts the postgres next to it) come from the same installation.
func FindBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return resolve(p), nil
	}
	for _, dir := range debianBinDirs() {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return resolve(p), nil
		}
	}
	return "", fmt.Errorf("%w: %s is neither on PATH nor in %s/<version>/bin; install with `apt-get install -y postgresql` (Debian/Ubuntu)",
		ErrNoPostgres, name, debianRoot)
}

// binDir picks the directory holding initdb and pg_ctl. An existing cluster prefers the installation
// of its own major version (PG_VERSION), because a server of another major version cannot open it.
func binDir(dataDir string) (string, error) {
	if v, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		dir := filepath.Join(debianRoot, strings.TrimSpace(string(v)), "bin")
		if isExecutable(filepath.Join(dir, "pg_ctl")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	pgCtl, err := FindBinary("pg_ctl")
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(pgCtl)
	for _, name := range []string{"initdb", "postgres"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return "", fmt.Errorf("%w: %s has pg_ctl but no %s; install with `apt-get install -y postgresql` (Debian/Ubuntu)",
				ErrNoPostgres, dir, name)
		}
	}
	return dir, nil
}

// debianBinDirs lists /usr/lib/postgresql/<version>/bin, highest version first.
func debianBinDirs() []string {
	entries, err := os.ReadDir(debianRoot)
	if err != nil {
		return nil
	}
	type versioned struct {
		major, minor int
		dir          string
	}
	var found []versioned
	for _, e := range entries {
		major, minor, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		found = append(found, versioned{major, minor, filepath.Join(debianRoot, e.Name(), "bin")})
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].major != found[j].major {
			return found[i].major > found[j].major
		}
		return found[i].minor > found[j].minor
	})
	dirs := make([]string, len(found))
	for i, f := range found {
		dirs[i] = f.dir
	}
	return dirs
}

// parseVersion reads directory names such as "15" or "9.6".
func parseVersion(s string) (major, minor int, ok bool) {
	majorStr, minorStr, hasMinor := strings.Cut(s, ".")
	major, err := strconv.Atoi(majorStr)
	if err != nil {
		return 0, 0, false
	}
	if hasMinor {
		if minor, err = strconv.Atoi(minorStr); err != nil {
			return 0, 0, false
		}
	}
	return major, minor, true
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
