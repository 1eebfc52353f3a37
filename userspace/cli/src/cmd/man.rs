//! `httpblk man DIR`: man pages, generated from the clap definitions, with the sections clap
//! knows nothing of (EXIT STATUS, ENVIRONMENT, EXAMPLES) written here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// Write the man pages (httpblk.1 and httpblk-COMMAND.1) into a directory.
#[derive(clap::Args)]
pub struct Args {
    dir: PathBuf,
}

pub fn run(a: Args, cmd: clap::Command) -> Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    write_pages(&cmd, &[], &a.dir)
        .with_context(|| format!("write man pages into {}", a.dir.display()))?;
    Ok(0)
}

/// Writes the page of `cmd` (reached through `path`) and of every visible subcommand.
fn write_pages(cmd: &clap::Command, path: &[&str], dir: &Path) -> std::io::Result<()> {
    let mut path = path.to_vec();
    path.push(cmd.get_name());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, &path, dir)?;
    }
    // Built, a subcommand's display name is its page's name (httpblk-cat).
    let man = Man::new(cmd.clone());
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join(man.get_filename()))?);
    man.render_title(&mut f)?;
    man.render_name_section(&mut f)?;
    man.render_synopsis_section(&mut f)?;
    man.render_description_section(&mut f)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut f)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut f)?;
    }
    let sub = path.get(1).copied().unwrap_or("");
    let mut roff = Roff::new();
    section(&mut roff, "EXIT STATUS", &exit_status(sub));
    section(&mut roff, "ENVIRONMENT", &environment(sub));
    section(&mut roff, "EXAMPLES", &examples(sub));
    roff.to_writer(&mut f)?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut f)?;
    }
    f.flush()
}

/// A section of tagged paragraphs: (tag, text); an empty list writes nothing.
fn section(roff: &mut Roff, title: &str, items: &[(&str, &str)]) {
    if items.is_empty() {
        return;
    }
    roff.control("SH", [title]);
    for (tag, text) in items {
        roff.control("TP", []);
        roff.text([bold(*tag)]);
        roff.text([roman(*text)]);
    }
}

/// The exit statuses a subcommand ends with ("" is the top page).
fn exit_status(sub: &str) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("0", "Success."),
        ("1", "An error; its cause is printed on standard error."),
        ("2", "A command line that could not be parsed."),
    ];
    match sub {
        "verify" => {
            v[2] = (
                "2",
                "A block file missing or corrupt, or a mirror serving another image; or a \
                 command line that could not be parsed.",
            );
            v.push((
                "3",
                "Nothing bad found, but something could not be checked: a mirror or a block \
                 file unreachable.",
            ));
            v.push(("28", "Stopped by --max-time."));
        }
        "cat" => {
            v.push((
                "28",
                "Stopped by --max-time; with -o FILE, FILE is not written.",
            ));
            v.push((
                "130, 143",
                "Interrupted by SIGINT or SIGTERM; with -o FILE, FILE is not written.",
            ));
        }
        "" => {
            v.push((
                "2, 3",
                "verify: something bad found (2), or something could not be checked (3).",
            ));
            v.push(("28", "cat, verify: stopped by --max-time."));
            v.push(("130, 143", "cat: interrupted by SIGINT or SIGTERM."));
        }
        _ => {}
    }
    if matches!(
        sub,
        "" | "cat" | "verify" | "create" | "completions" | "status"
    ) {
        v.push((
            "141",
            "Killed by SIGPIPE (in a shell): the reader of standard output went away, as for \
             coreutils.",
        ));
    }
    v
}

/// The environment variables a subcommand reads.
fn environment(sub: &str) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![(
        "HTTPBLK_LOG",
        "A tracing filter (e.g. info,httpblk_core=debug) that overrides -v and -q.",
    )];
    if matches!(sub, "" | "cat" | "verify" | "attach" | "recover") {
        v.extend([
            (
                "http_proxy, https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY",
                "Proxies by curl's rules (http_proxy in lower case only); --proxy replaces them.",
            ),
            (
                "no_proxy, NO_PROXY",
                "Hosts, domains, addresses and CIDR ranges reached without a proxy; * for all.",
            ),
            (
                "SSL_CERT_FILE, SSL_CERT_DIR",
                "Trusted CA certificates instead of the system's (/etc/ssl/certs).",
            ),
            ("NETRC", "The netrc file --netrc reads (default: ~/.netrc)."),
        ]);
    }
    if matches!(sub, "" | "attach" | "recover" | "detach" | "status") {
        v.push((
            "HTTPBLK_RUN_DIR",
            "Where helpers keep their state and logs (default: /run/httpblk).",
        ));
    }
    v
}

/// A few command lines that show a subcommand's use.
fn examples(sub: &str) -> Vec<(&'static str, &'static str)> {
    match sub {
        "" | "create" => vec![
            (
                "httpblk create disk.img store/ --codec zstd",
                "Cut disk.img into compressed, content-named block files and an index in \
                 store/; prints the index sha256 that clients pin.",
            ),
            (
                "httpblk serve store/ --listen 0.0.0.0:8080",
                "Serve the store (any static web server does as well).",
            ),
            (
                "httpblk attach http://HOST:8080/disk.hbi --index-digest SHA256",
                "As root, with httpblk.ko loaded: /dev/httpblkN, read lazily over HTTP.",
            ),
        ],
        "serve" => vec![(
            "httpblk serve store/ --listen [::]:8080",
            "Serve a store on every address, port 8080.",
        )],
        "verify" => vec![
            (
                "httpblk verify store/",
                "Check every block of every image in a local store.",
            ),
            (
                "httpblk verify http://a/disk.hbi http://b/disk.hbi --index-digest SHA256",
                "Check each mirror's copy of every block; exit status 2 if one is bad.",
            ),
        ],
        "cat" => vec![
            (
                "httpblk cat http://HOST/disk.hbi -o disk.img",
                "Rebuild the image; disk.img appears only once complete.",
            ),
            (
                "httpblk cat http://HOST/disk.hbi --max-time 600 --speed-limit 10000 | dd of=/dev/sdX bs=4M",
                "Write it to a disk, giving up after ten minutes or on a crawling server.",
            ),
        ],
        "import-cloop" => vec![(
            "httpblk import-cloop knoppix.cloop store/",
            "Convert a cloop image (V2 to V4) into a store.",
        )],
        "attach" => vec![
            (
                "httpblk attach http://a/disk.hbi http://b/disk.hbi --cache-dir /var/cache/httpblk",
                "One device over two mirrors, with a second-level cache on local disk.",
            ),
            (
                "mount -o ro /dev/httpblk0 /mnt",
                "Use the device like any read-only disk.",
            ),
        ],
        "detach" => vec![("httpblk detach /dev/httpblk0", "Remove the device.")],
        "recover" => vec![(
            "httpblk recover /dev/httpblk0",
            "Serve a device again after its helper died, with the recorded options.",
        )],
        "status" => vec![(
            "httpblk status --json",
            "Every device's kernel counters and mirrors, for scripts.",
        )],
        "completions" => vec![(
            "httpblk completions bash > /etc/bash_completion.d/httpblk",
            "Install bash completions.",
        )],
        "man" => vec![("httpblk man /usr/local/share/man/man1", "Write these pages.")],
        _ => Vec::new(),
    }
}
