//! Local Azure Resource Manager emulator.
