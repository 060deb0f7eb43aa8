! Placeholder: being written (see docs/core-contract.md).
module colm_soilwater
  use colm_const, only: r8
  implicit none
end module colm_soilwater
