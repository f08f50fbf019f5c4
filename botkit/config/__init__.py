"""The deployment's one YAML file: its models (`botkit.config.models`: the core's sections,
`Section` for plugins' own) and reading it (`botkit.config.loader`: line numbers, `${ENV}`,
every problem as `file:line: key: message`)."""

from botkit.config.loader import DEFAULT_CONFIG, RawConfig, read_config, validate_config
from botkit.config.models import (AskSpec, Config, ConfigError, Configured, DispatchConfig, Duration, HttpSettings,
                                  LoggingConfig, MetricsConfig, PostTarget, RecoveryConfig, RetentionConfig,
                                  RetrySettings, RootConfig, Route, ScheduledJob, Section, ServerConfig,
                                  SessionsConfig, StoreConfig, parse_duration, routes_of)

__all__ = ["DEFAULT_CONFIG", "AskSpec", "Config", "ConfigError", "Configured", "DispatchConfig", "Duration",
           "HttpSettings", "LoggingConfig", "MetricsConfig", "PostTarget", "RawConfig", "RecoveryConfig",
           "RetentionConfig", "RetrySettings", "RootConfig", "Route", "ScheduledJob", "Section", "ServerConfig",
           "SessionsConfig", "StoreConfig", "parse_duration", "read_config", "routes_of", "validate_config"]
