//! Role-based access as the original does it: permissions (route and method patterns, full-match
//! regular expressions, methods case-insensitive) grouped into roles. The original's built-in
//! permissions and roles (`reader`, `writer`, `admin`) are always there; a configured one with
//! the same name replaces the built-in.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// One pattern or a list of them (the original accepts both).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    pub name: String,
    pub routes: OneOrMany,
    pub methods: OneOrMany,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub name: String,
    pub permissions: OneOrMany,
}

/// The configured permissions and roles (mixed with the built-ins).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacConfig {
    #[serde(default)]
    pub permissions: Vec<PermissionConfig>,
    #[serde(default)]
    pub roles: Vec<RoleConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Permission {
    pub name: String,
    pub routes: Vec<String>,
    pub methods: Vec<String>,
    #[serde(skip)]
    route_patterns: Vec<Regex>,
    #[serde(skip)]
    method_patterns: Vec<Regex>,
}

impl Permission {
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.route_patterns.iter().any(|route| route.is_match(path))
            && self
                .method_patterns
                .iter()
                .any(|pattern| pattern.is_match(method))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<String>,
}

/// Permissions and roles, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Rbac {
    pub permissions: Vec<Permission>,
    pub roles: Vec<Role>,
}

fn full_match(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|error| format!("pattern {pattern:?}: {error}"))
}

fn builtins() -> RbacConfig {
    let permission = |name: &str, routes: &[&str], methods: &[&str]| PermissionConfig {
        name: name.into(),
        routes: OneOrMany::Many(routes.iter().map(|r| r.to_string()).collect()),
        methods: OneOrMany::Many(methods.iter().map(|m| m.to_string()).collect()),
    };
    let role = |name: &str, permissions: &[&str]| RoleConfig {
        name: name.into(),
        permissions: OneOrMany::Many(permissions.iter().map(|p| p.to_string()).collect()),
    };
    RbacConfig {
        permissions: vec![
            permission("read-all", &[".*"], &["GET"]),
            permission(
                "read-routes-with-post",
                &["/artefacts/metadata/query", "/components/diff"],
                &["POST"],
            ),
            permission("write-all", &[".*"], &["PUT", "POST", "DELETE"]),
            permission("admin", &[".*"], &[".*"]),
        ],
        roles: vec![
            role("reader", &["read-all", "read-routes-with-post"]),
            role("writer", &["read-all", "write-all"]),
            role("admin", &["admin"]),
        ],
    }
}

impl Rbac {
    /// The configured permissions and roles, then the built-ins not overridden by name. A role
    /// naming an unknown permission is a configuration error.
    pub fn new(config: &RbacConfig) -> Result<Rbac, String> {
        let builtins = builtins();
        let mut permission_configs = config.permissions.clone();
        for builtin in builtins.permissions {
            if !permission_configs.iter().any(|p| p.name == builtin.name) {
                permission_configs.push(builtin);
            }
        }
        let mut role_configs = config.roles.clone();
        for builtin in builtins.roles {
            if !role_configs.iter().any(|r| r.name == builtin.name) {
                role_configs.push(builtin);
            }
        }
        let permissions = permission_configs
            .into_iter()
            .map(|config| {
                let routes = config.routes.into_vec();
                let methods = config.methods.into_vec();
                Ok(Permission {
                    route_patterns: routes
                        .iter()
                        .map(|route| full_match(route, false))
                        .collect::<Result<_, String>>()?,
                    method_patterns: methods
                        .iter()
                        .map(|method| full_match(method, true))
                        .collect::<Result<_, String>>()?,
                    name: config.name,
                    routes,
                    methods,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let roles: Vec<Role> = role_configs
            .into_iter()
            .map(|config| Role {
                name: config.name,
                permissions: config.permissions.into_vec(),
            })
            .collect();
        for role in &roles {
            if let Some(unknown) = role
                .permissions
                .iter()
                .find(|name| !permissions.iter().any(|p| &p.name == *name))
            {
                return Err(format!(
                    "role {:?} names the unknown permission {unknown:?}",
                    role.name
                ));
            }
        }
        Ok(Rbac { permissions, roles })
    }

    pub fn roles_named<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = &'a Role> + 'a {
        self.roles.iter().filter(|role| names.contains(&role.name))
    }

    /// The permissions the roles `names` grant (each once).
    pub fn permissions_of(&self, names: &[String]) -> Vec<&Permission> {
        let mut granted: Vec<&Permission> = Vec::new();
        for role in self.roles_named(names) {
            for name in &role.permissions {
                if let Some(permission) = self.permissions.iter().find(|p| &p.name == name) {
                    if !granted.iter().any(|known| known.name == permission.name) {
                        granted.push(permission);
                    }
                }
            }
        }
        granted
    }

    /// Whether the roles `names` may use `method` on `path`.
    pub fn allows(&self, names: &[String], method: &str, path: &str) -> bool {
        self.permissions_of(names)
            .iter()
            .any(|permission| permission.allows(method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_grant_as_the_original_and_configured_ones_replace_them() {
        let rbac = Rbac::new(&RbacConfig::default()).unwrap();
        let reader = vec!["reader".to_string()];
        let writer = vec!["writer".to_string()];
        assert!(rbac.allows(&reader, "GET", "/ocm/component"));
        assert!(rbac.allows(&reader, "POST", "/artefacts/metadata/query"));
        assert!(!rbac.allows(&reader, "PUT", "/artefacts/metadata"));
        assert!(rbac.allows(&writer, "put", "/artefacts/metadata"));
        assert!(rbac.allows(&writer, "DELETE", "/cache"));
        assert!(!rbac.allows(&writer, "PATCH", "/cache"));
        assert!(rbac.allows(&["admin".into()], "PATCH", "/anything"));
        assert!(!rbac.allows(&["nobody".into()], "GET", "/ocm/component"));

        let config: RbacConfig = serde_yaml_ng::from_str(
            "permissions:\n  - {name: metadata, routes: /artefacts/metadata.*, methods: [PUT, DELETE]}\nroles:\n  - {name: writer, permissions: [metadata]}\n  - {name: scanner, permissions: metadata}\n",
        )
        .unwrap();
        let rbac = Rbac::new(&config).unwrap();
        assert!(rbac.allows(&writer, "PUT", "/artefacts/metadata"));
        assert!(
            !rbac.allows(&writer, "DELETE", "/cache"),
            "writer was replaced"
        );
        assert!(
            !rbac.allows(&writer, "PUT", "/x/artefacts/metadata"),
            "full match"
        );
        assert!(rbac.allows(&["scanner".into()], "DELETE", "/artefacts/metadata"));
        assert!(
            rbac.allows(&reader, "GET", "/features"),
            "built-in reader kept"
        );

        let broken: RbacConfig =
            serde_yaml_ng::from_str("roles:\n  - {name: x, permissions: [nonesuch]}\n").unwrap();
        assert!(Rbac::new(&broken).unwrap_err().contains("nonesuch"));
    }
}
