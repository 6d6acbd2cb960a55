//! `--name value` command-line options, enough for two small binaries
//! without pulling in an argument-parsing crate.

use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `--name value` pairs; `known` lists the accepted names.
    pub fn parse(known: &[&str]) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .filter(|n| known.contains(n))
                .ok_or_else(|| {
                    format!("unknown option {flag}; options: --{}", known.join(", --"))
                })?;
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            values.insert(name.to_string(), value);
        }
        Ok(Self { values })
    }

    /// The value of `--name`, or `default` when it was not given.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("bad value for --{name}: {text}")),
        }
    }
}
