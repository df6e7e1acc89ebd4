package sqltest

import (
	"fmt"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest/debian"
)

// product is a database server the tests need from the system.
type product struct {
	name    string                  // PostgreSQL, MariaDB
	pkg     string                  // its Debian package
	service string                  // the system service the package installs
	looked  string                  // where find looks, for the error message
	find    func() ([]string, bool) // its programs, if installed
}

func (p *product) debianPackage() debian.Package {
	return debian.Package{Name: p.pkg, Service: p.service, Installed: func() bool { _, ok := p.find(); return ok }}
}

// binaries returns p's programs, installing the servers' packages first
// when they are missing and the tests may (both at once: the first test
// that needs one will soon need the other).
func (p *product) binaries() ([]string, error) {
	if bins, ok := p.find(); ok {
		return bins, nil
	}
	if err := debian.Ensure("sqltest", postgresql.debianPackage(), mariadb.debianPackage()); err != nil {
		return nil, fmt.Errorf("%s not found (looked for %s): %w", p.name, p.looked, err)
	}
	if bins, ok := p.find(); ok {
		return bins, nil
	}
	return nil, fmt.Errorf("%s not found after installing package %s (looked for %s)", p.name, p.pkg, p.looked)
}
