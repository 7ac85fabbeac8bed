package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// osUser is the OS account the PostgreSQL programs run as.
type osUser struct {
	name string
	uid  int
	gid  int
	// cred is nil when the programs run as the current user.
	cred *syscall.Credential
}

// postgresUser returns the account to run PostgreSQL as: the current user, or the "postgres" user
// when the current user is root (PostgreSQL refuses to run as root).
func postgresUser() (osUser, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return osUser{name: name, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return osUser{}, fmt.Errorf("%w: create it with `useradd --system --user-group postgres` or install PostgreSQL with `apt-get install -y postgresql`: %w",
			ErrNoPostgresUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return osUser{}, fmt.Errorf("error reading uid of the postgres user: %w", err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return osUser{}, fmt.Errorf("error reading gid of the postgres user: %w", err)
	}
	if uid == 0 {
		return osUser{}, fmt.Errorf("%w: the postgres user has uid 0", ErrNoPostgresUser)
	}
	return osUser{
		name: u.Username, uid: uid, gid: gid,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
	}, nil
}

// command prepares a program to run as this user. It runs from "/" because the current directory
// (often /root) may be closed to the user, and without PG* variables that would redirect it.
func (u osUser) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if u.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	}
	return cmd
}

// own makes path (recursively) owned by the user, when the programs run as another user.
func (u osUser) own(path string) error {
	if u.cred == nil {
		return nil
	}
	return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, u.uid, u.gid); err != nil {
			return fmt.Errorf("error giving %s to the %s user: %w", p, u.name, err)
		}
		return nil
	})
}

// checkReach verifies, as the user itself, that it can enter every directory from "/" down to dir
// and write in dir. It names the first directory that stops it. Permission bits alone do not tell
// (ACLs, group membership, root-squashed mounts), so the check runs a shell under the user's
// credential.
func (u osUser) checkReach(ctx context.Context, dir string) error {
	if u.cred == nil {
		return nil
	}
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append([]string{d}, chain...)
		if d == filepath.Dir(d) {
			break
		}
	}
	const script = `for d in "$@"; do test -x "$d" || { printf '%s' "$d"; exit 3; }; done
last=""; for d in "$@"; do last="$d"; done
test -w "$last" || { printf '%s' "$last"; exit 4; }`
	args := append([]string{"-c", script, "sh"}, chain...)
	out, err := u.command(ctx, "/bin/sh", args...).Output()
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || (exit.ExitCode() != 3 && exit.ExitCode() != 4) {
		return fmt.Errorf("error checking that the %s user can reach %s: %w", u.name, dir, err)
	}
	blocker := string(out)
	if exit.ExitCode() == 4 {
		return fmt.Errorf("%w: the %s user cannot write in %s; make it the owner with `chown -R %s %s`",
			ErrDirBlocked, u.name, blocker, u.name, blocker)
	}
	return fmt.Errorf("%w: the %s user cannot enter %s (needed to reach %s); allow it with `chmod o+x %s` or choose a data directory outside it",
		ErrDirBlocked, u.name, blocker, dir, blocker)
}
