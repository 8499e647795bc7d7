"""The resident ID card reader (居民身份证阅读模块): codec, identity rules, session and agent."""
