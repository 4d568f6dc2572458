// Command server is the hawk daemon.
//
//	server [-config FILE] [-check-config] [-version] [-<key>=<value> ...]
//
// Every configuration key is also a flag named after it (-limits.max_conns=10).
// Configuration precedence: embedded defaults < file < HAWK_* environment < flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/hawk-agents/hawk/internal/config"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration file")
	check := fs.Bool("check-config", false, "validate the configuration and exit: 0 if valid, 1 naming each bad key")
	showVersion := fs.Bool("version", false, "print the version and exit")
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "hawk %s (%s)\n", version, runtime.Version())
		return 0
	}
	loader := &config.Loader{File: *file, Flags: fs}
	cfg, err := loader.Load() // validates: every bad key is named
	if *check {
		if err != nil {
			printConfigError(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, "configuration is valid")
		return 0
	}
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if err := serve(loader, cfg); err != nil {
		fmt.Fprintf(stderr, "hawk: %v\n", err)
		return 1
	}
	return 0
}

func printConfigError(w io.Writer, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			fmt.Fprintf(w, "config: %s\n", fe.String())
		}
		return
	}
	fmt.Fprintf(w, "%v\n", err)
}
