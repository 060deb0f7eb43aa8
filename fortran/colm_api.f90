! The only file f2py wraps. Thin: flat c_double / c_int arrays in, calls into the process modules.
! Everything here is stateless: all prognostic state is passed in and out by the caller.
!
! Array layouts (Fortran order, columns last) are documented in docs/core-contract.md and
! fortran/colm_layout.f90; colmda/layout.py mirrors the indices.

subroutine layout_sizes(sizes)
  ! Packed-array sizes, so Python can check that its layout matches the compiled core.
  use colm_const, only: c_int => ik, nl_soil, nsnow_max, nlev
  use colm_layout, only: NCS, NSP, NVP, NCP, NF, ND, NDS
  implicit none
  integer(c_int), intent(out) :: sizes(10)   ! nl_soil, nsnow_max, nlev, NCS, NSP, NVP, NCP, NF, ND, NDS (-)
  sizes = [nl_soil, nsnow_max, nlev, NCS, NSP, NVP, NCP, NF, ND, NDS]
end subroutine layout_sizes

subroutine default_soil_thickness(dz)
  ! CoLM's 10 default soil layer thicknesses from its node-depth formula.
  use colm_const, only: c_double => r8, nl_soil
  use colm_grid, only: colm_soil_thickness
  implicit none
  real(c_double), intent(out) :: dz(10)      ! soil layer thickness (m)
  call colm_soil_thickness(dz)
end subroutine default_soil_thickness

subroutine advance(ncol, nsteps, nper, nout, dt, hydr_model, dz_soil, forc, soilpar, vegpar, colpar, &
                   t_soisno, wliq_soisno, wice_soisno, dz_snow, cstate, diag, diag_soil, ierr)
  ! Advances ncol independent columns through nsteps steps of length dt. Diagnostics are means over
  ! consecutive blocks of nper steps (nout = nsteps / nper blocks). State arrays are updated in place.
  use colm_const, only: c_double => r8, c_int => ik, nl_soil, nlev, nsnow_max
  use colm_layout, only: NCS, NSP, NVP, NCP, NF, ND, NDS
  use colm_column, only: column_run
  implicit none
  integer(c_int), intent(in) :: ncol                         ! number of columns (-)
  integer(c_int), intent(in) :: nsteps                       ! number of time steps (-)
  integer(c_int), intent(in) :: nper                         ! steps per diagnostic output (-)
  integer(c_int), intent(in) :: nout                         ! number of outputs, nsteps / nper (-)
  real(c_double), intent(in) :: dt                           ! time step (s)
  integer(c_int), intent(in) :: hydr_model                   ! 1 Campbell, 2 van Genuchten-Mualem (-)
  real(c_double), intent(in) :: dz_soil(10)                  ! soil layer thickness (m)
  real(c_double), intent(in) :: forc(8, nsteps, ncol)        ! forcing, see colm_layout F_* (mixed units)
  real(c_double), intent(in) :: soilpar(13, 10, ncol)        ! soil parameters per layer, SP_* (mixed units)
  real(c_double), intent(in) :: vegpar(18, ncol)             ! PFT parameters, VP_* (mixed units)
  real(c_double), intent(in) :: colpar(7, ncol)              ! column parameters, CP_* (mixed units)
  real(c_double), intent(inout) :: t_soisno(15, ncol)        ! snow (1:5) + soil (6:15) temperature (K)
  real(c_double), intent(inout) :: wliq_soisno(15, ncol)     ! liquid water per layer (kg m-2)
  real(c_double), intent(inout) :: wice_soisno(15, ncol)     ! ice per layer (kg m-2)
  real(c_double), intent(inout) :: dz_snow(5, ncol)          ! snow layer thickness, 0 if absent (m)
  real(c_double), intent(inout) :: cstate(9, ncol)           ! column scalar state, CS_* (mixed units)
  real(c_double), intent(out) :: diag(34, nout, ncol)        ! diagnostics, D_* (mixed units)
  real(c_double), intent(out) :: diag_soil(3, 10, nout, ncol) ! per-layer soil diagnostics, DS_* (mixed)
  integer(c_int), intent(out) :: ierr(ncol)                  ! 0 ok, else the first step that failed (-)
  integer :: icol
  !$omp parallel do schedule(dynamic, 16)
  do icol = 1, ncol
    call column_run(nsteps, nper, nout, dt, hydr_model, dz_soil, forc(:, :, icol), soilpar(:, :, icol), &
                    vegpar(:, icol), colpar(:, icol), t_soisno(:, icol), wliq_soisno(:, icol), &
                    wice_soisno(:, icol), dz_snow(:, icol), cstate(:, icol), diag(:, :, icol), &
                    diag_soil(:, :, :, icol), ierr(icol))
  end do
  !$omp end parallel do
end subroutine advance

! >>> soilwater kernel (owned by the soil-water module author; verification entry point)
! <<< soilwater kernel

! >>> heat kernel (owned by the soil-temperature module author; verification entry point)
! <<< heat kernel

! >>> canopy kernel (owned by the canopy module author; verification entry point)
! <<< canopy kernel
