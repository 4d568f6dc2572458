// Command server is the hawk daemon, built as hawk (go build -o hawk ./cmd/server).
//
//	hawk [-config FILE] [-check-config] [-version] [-<key>=<value> ...]   run the server
//	hawk upgrade|reload|status [-config FILE] [-socket PATH]              ask the running server
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
	"time"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/daemon"
	"github.com/hawk-agents/hawk/internal/reload"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	began := time.Now()
	// The usual form is answered before the flag set of every key is built; any other
	// (hawk -config x -version) goes through the flags below and prints the same.
	if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
		printVersion(stdout)
		return 0
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return runCommand(args[0], args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("hawk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration file")
	check := fs.Bool("check-config", false, "validate the configuration and exit: 0 if valid, 1 naming each bad key")
	showVersion := fs.Bool("version", false, "print the version and exit")
	config.RegisterFlags(fs)
	fs.Usage = func() { usage(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	// A word among the flags: flag stops parsing there, so every flag after it
	// would be silently dropped and a server started without them.
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hawk: unexpected argument %q: the server takes flags only; commands are %s (hawk -h)\n", fs.Arg(0), commandList)
		return 2
	}
	if *showVersion {
		printVersion(stdout)
		return 0
	}
	loader := &config.Loader{File: *file, Flags: fs}
	cfg, err := loader.Load() // validates: every bad key is named
	if *check {
		what := "the embedded defaults, HAWK_* environment and flags (no -config file)"
		if *file != "" {
			what = *file + " (with HAWK_* environment and flags)"
		}
		if err != nil {
			fmt.Fprintf(stderr, "configuration %s is invalid:\n", what)
			printConfigError(stderr, err)
			return 1
		}
		tokens, err := reload.OpenTokensFile(cfg)
		var set *auth.Set
		if err == nil {
			set, err = reload.AuthSet(cfg, tokens)
		}
		if err != nil {
			fmt.Fprintf(stderr, "configuration %s is invalid:\nconfig: %v\n", what, err)
			return 1
		}
		fmt.Fprintf(stdout, "configuration %s is valid\n", what)
		_, mode := reload.AuthMode(cfg, set)
		fmt.Fprintln(stdout, mode)
		return 0
	}
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if err := daemon.Run(daemon.Options{Loader: loader, Config: cfg, Version: version, Began: began}); err != nil {
		fmt.Fprintf(stderr, "hawk: %v\n", err)
		return 1
	}
	return 0
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "hawk %s (%s)\n", version, runtime.Version())
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
